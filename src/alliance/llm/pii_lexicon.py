"""Word lists for redaction: given names, surnames, ordinary English words and capitalised words that identify no one.

Evidence: the ordinary-word test uses the public-domain Webster's Second word list (web2, via the `english-words`
package), where only proper nouns are capitalised; the name lists and allow-lists were written for this project.
"""

from __future__ import annotations

import re
from functools import lru_cache


def _words(block: str) -> frozenset[str]:
    return frozenset(block.split())


#: Common given names across English-speaking, European, South Asian, East Asian, African and Arabic-speaking
#: communities, written for this project (lower-case). Unlisted names are still caught by the other rules.
FIRST_NAMES: frozenset[str] = _words("""
aaron abby abdul abdullah abigail adam adaeze adebayo adele adrian aditya agnieszka ahmad ahmed aidan aileen aisha
akash akira alan albert alejandro aleksandra alex alexander alexandra alexis ali alice alicia alison amanda amara
amber amelia amina amir amit amy ana anand andre andrea andreas andrew andy aneesa angela angelo anil anita anjali
ann anna anne annie anthony antonio anya aoife arjun arthur asha ashley aurora ava ayesha babajide barbara barry
beatrice ben benjamin beth betty bilal bill billy blessing bob bobby brad brandon brenda brendan brian bridget
brittany bruce bryan caitlin caleb callum cameron camila carl carla carlos carmen carol caroline carolyn catherine
cerys charles charlie charlotte chen chidi chiara chinedu chloe chris christian christina christine christopher
ciara ciaran claire clara colin connor conor craig crystal cynthia dafydd daisy dan daniel daniela danielle darren
dave david dawn dean deborah debbie declan deepak denise dennis derek desmond diana diane diego dmitri dominic
donald donna doris dorothy douglas dylan eamon edward eileen elaine eleanor elena eli elijah elizabeth ella ellen
ellie emeka emily emma emre eric erica erin esther ethan eva evelyn ewa fatima felix fergus fiona frances francesca
francesco frank fred funmi gabriel gareth gary gavin george georgia gerald gina giovanni giulia grace graham greg
gregory gurpreet hamza hannah harold harpreet harry hassan hayley heather helen henry hiroshi holly howard hugo
hussein ian ibrahim ifeoma imran ines irene isaac isabel isabella isla ivan jack jackie jacob jade jakub james
jamie jan jane janet janice jasmine jason javier jay jean jeff jeffrey jennifer jenny jeremy jerry jess jessica
jill jim jimmy joan joanna joe joel john johnny jon jonathan jordan jose joseph josh joshua joy joyce juan judith
judy julia julian julie justin kai kamal karen karim kasia kate katherine kathleen kathryn katie katarzyna kayla
keith kelly ken kenji kenneth kevin khadija kieran kim kimberly kwame kyle laila lakshmi laura lauren leah lee leila
leo leon li liam lily linda lisa logan lois lorna louis louise luca lucas lucia lucy luis luke lydia lynn madison
maggie magdalena mairead malik manpreet marcus maria mariam marie marilyn mark marta martha martin mary mason
mateusz matt matthew maya megan mehmet mei melissa mia michael michelle michal mike mohamed mohammad mohammed
molly monica morgan muhammad nadia nancy naomi naveen neil nia niamh nicholas nick nicola nicole nikhil nina noah
noor nuala obinna olga olivia oliver oluwaseun omar oscar owen pamela paolo patricia patrick paul paula pavel
peter phil philip phoebe piotr pooja priya rachel rahul raj rajesh ralph ramon rashid ravi raymond rebecca rhys
richard rick rita rob robert robin roger rohan ronald rosa rose rosie ruby russell ruth ryan saanvi sadia saira
sally sam samantha samir samuel sandra sanjay santiago sara sarah saoirse scott sean seamus sergei shanice sharon
shauna shirley shreya simon sinead siobhan siddharth sofia sophia sophie stacy stephanie stephen steve steven
stuart sunita susan suzanne tanya tariq teresa terry theo theresa thomas tim timothy tina todd tom tomasz tommy
tony tracy tunde tyler usman valerie vanessa victor victoria vijay vincent walter wayne wei wendy william willow
wojciech xavier yasmin yusuf zach zainab zara zoe zofia
""")

#: Common surnames (lower-case), written for this project; used after titles and given names and when capitalised.
SURNAMES: frozenset[str] = _words("""
adams ahmed ali allen anderson bailey baker banerjee begum bell bennett brennan brooks byrne campbell carter chan
chatterjee chen clarke collins cooper cox davies davis doherty edwards evans fernandez fitzgerald garcia ghosh gill
gonzalez gupta hall harris hernandez hughes hussain jackson james jenkins johnson jones kaur kelly kennedy khan
kowalski kumar lee lewis lopez macdonald mackenzie martin martinez mcdonald mensah miller mitchell moore morgan
morris murphy murray nguyen novak nowak obi o'brien o'connor o'neill okafor okonkwo parker patel perez phillips
price quinn rahman reddy reid roberts robinson rodriguez ryan sanchez scott shah sharma singh smith stewart sullivan
taylor thomas thompson turner walker walsh ward watson williams wilson wong wright wu yang young zhang
""")

#: Capitalised words that identify no one: days, months, holidays, faiths, nationalities, services, brands, acronyms.
ALLOW_CAPS: frozenset[str] = _words("""
i i'm i've i'd i'll im ive id monday tuesday wednesday thursday friday saturday sunday january february march april
may june july august september october november december christmas easter ramadan eid diwali hanukkah passover
halloween new year god allah jesus lord bible quran english british american irish scottish welsh canadian
australian indian pakistani polish nigerian chinese japanese african european asian muslim christian jewish
catholic hindu sikh buddhist atheist nhs gp a&e ae er icu cbt dbt act emdr mi aa na ok okay tv uk us usa eu gcse
gcses a-level a-levels uni covid covid-19 coronavirus internet facebook instagram whatsapp snapchat tiktok twitter
youtube google netflix amazon spotify zoom teams xbox playstation iphone android samaritans childline mind shout
mum mom dad mummy daddy nan nana gran granny grandma grandad grandpa mother father sister brother auntie aunt uncle
doctor dr nurse sir madam miss mr mrs ms mx prof professor friday's sunday's monday's christmas's xmas
""")

#: Lower-case words that are ordinary in counselling talk but missing from a 1934 dictionary.
MODERN_WORDS: frozenset[str] = _words("""
okay ok email emails emailed online offline internet lockdown lockdowns podcast uni counsellor counsellors
counselling counseling texted texting text texts app apps website websites wifi laptop smartphone selfie
meds antidepressant antidepressants sertraline fluoxetine citalopram mindfulness wellbeing burnout overthinking
gaslighting ghosted trauma triggering triggered panicky kids kiddo teen teens teenager teenagers wanna gonna gotta
yeah yep nope hmm um uh mm mhm alright anyways cos coz dunno kinda sorta cannot covid vape vaping hangout weekend
weekends workplace homeschooling rota payslip furlough furloughed zoom whatsapp facebook instagram anymore
idk tbh thx lol omg imo btw ngl smh tho thru ur pls plz ty ik rn asap ffs wtf bc cuz fyi irl dm dms i mom moms
boyfriend boyfriends
paracetamol ibuprofen methamphetamine meth ketamine mdma weed methadone suboxone naloxone escitalopram mirtazapine
diazepam lorazepam zopiclone quetiapine prozac xanax valium wellbutrin chantix adderall ritalin
""")

#: Given names that are also everyday words: redacted when capitalised inside a sentence or after a cue, never
#: in lower case.
COMMON_WORD_NAMES: frozenset[str] = _words("""
will may grace joy hope faith mark bill rose dawn sue pat rob jack frank art amber ruby holly ivy lily daisy
april june summer autumn sunny rich chase drew gene guy ray max ben dean miles hunter page chance
""")


@lru_cache(maxsize=1)
def _web2() -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    """(ordinary words, lower-cased proper nouns, wider ordinary words), loaded once per process.

    Ordinary: Webster's Second's lower-case entries; proper nouns: its capitalised entries that are not also
    ordinary words. Wider: ordinary plus GCIDE's words (irregular forms and newer words such as "began", "women",
    "hang"), except those Webster's Second capitalises and the given names and surnames above. GCIDE holds many
    place names without case, so the wider set only judges lower-case words; capitalised ones meet the strict set.
    """
    try:
        from english_words import get_english_words_set
    except ImportError as e:  # a core dependency: a broken install must not mean weaker redaction
        raise RuntimeError("redaction needs the `english-words` package (a dependency of alliance); reinstall "
                           "alliance") from e
    words = get_english_words_set(["web2"], lower=False)
    ordinary = frozenset(w for w in words if w.islower())
    proper = frozenset(w.lower() for w in words if w[:1].isupper()) - ordinary
    gcide = get_english_words_set(["gcide"], lower=True, alpha=True)
    return ordinary, proper, ordinary | (frozenset(gcide) - proper - FIRST_NAMES - SURNAMES)


_SUFFIXES = (("'s", ""), ("’s", ""), ("ies", "y"), ("ied", "y"), ("iest", "y"), ("ier", "y"), ("ily", "y"),
             ("ing", ""), ("ing", "e"), ("ed", ""), ("ed", "e"), ("es", ""), ("s", ""), ("ly", ""), ("er", ""),
             ("er", "e"), ("ers", ""), ("est", ""), ("ness", ""), ("ment", ""), ("ful", ""), ("less", ""),
             ("able", ""), ("ish", ""), ("ise", ""), ("ised", ""), ("ize", ""))
_FILLER = re.compile(r"(?:[hmu]+|uh|um|umm|er|erm|ah|aw|oh|eh|huh|hmm+|mhm+|mmh+|yup|yep|nope|nah|yeah|ya|yah|"
                     r"ok|okay|aha|ooh|ugh|wow)(?:-(?:[hmu]+|huh|hmm+|uh|oh))*")
_CLITICS = ("n't", "'re", "'ve", "'ll", "'d", "'m", "'s")
_CLITIC_BASES = frozenset(["ca", "wo", "ai", "sha", "y", "i", "let", "that", "there", "here", "what", "who", "how"])
_PREFIXES = ("re", "un", "over", "under", "out", "mis", "pre", "post", "non", "self", "co", "dis", "anti", "inter",
             "super", "sub", "mega", "micro", "ex", "psycho", "neuro", "hyper", "hypo", "multi", "semi")


@lru_cache(maxsize=65536)
def is_ordinary(word: str, wide: bool = False) -> bool:
    """Is ``word`` (any case) an ordinary English word, allowing for common inflections, prefixes, contractions,
    fillers and British spelling (the dictionary is American: "behaviours" -> "behaviors" -> "behavior")?
    ``wide`` also accepts GCIDE's words: for words written in lower case only (see :func:`_web2`)."""
    w = word.lower().strip("'’-")
    if not w:
        return True
    if "-" in w:
        return all(is_ordinary(p, wide) for p in w.split("-") if p)
    if _FILLER.fullmatch(w):
        return True
    w = w.replace("’", "'")
    for clitic in _CLITICS:  # don't, you're, they've, it'd, can't, would've
        if w.endswith(clitic) and len(w) > len(clitic):
            base = w[: -len(clitic)]
            return base in _CLITIC_BASES or is_ordinary(base, wide)
    british = w.replace("our", "or").replace("is", "iz").replace("ys", "yz").replace("tre", "ter")
    return _ordinary_form(w, wide) or (british != w and _ordinary_form(british, wide))


def _ordinary_form(w: str, wide: bool) -> bool:
    strict, _, wider = _web2()
    ordinary = wider if wide else strict
    if w in ordinary or w in MODERN_WORDS:
        return True
    for suf, rep in _SUFFIXES:
        if w.endswith(suf) and len(w) - len(suf) + len(rep) >= 3:
            base = w[: len(w) - len(suf)] + rep
            if base in ordinary or base in MODERN_WORDS:
                return True
            if len(base) >= 4 and base[-1] == base[-2] and base[:-1] in ordinary:  # stopped -> stop
                return True
    # restructure, postcode, overthink, unfollow, psychoeducation
    if any(w.startswith(pre) and len(w) - len(pre) >= 4 and _ordinary_form(w[len(pre):], wide) for pre in _PREFIXES):
        return True
    # compounds of two words of four letters or more: lifestyle, childcare, healthcare, paperwork
    return any(w[:i] in strict and w[i:] in strict for i in range(4, len(w) - 3))


_LETTERS = "abcdefghijklmnopqrstuvwxyz"


@lru_cache(maxsize=65536)
def near_ordinary(word: str) -> bool:
    """Is ``word`` one edit (a typo: letter dropped, added, swapped or changed) from an ordinary word?"""
    w = word.lower()
    if len(w) < 4:
        return False
    splits = [(w[:i], w[i:]) for i in range(len(w) + 1)]
    edits = {a + b[1:] for a, b in splits if b}
    edits |= {a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1}
    edits |= {a + c + b[1:] for a, b in splits if b for c in _LETTERS}
    edits |= {a + c + b for a, b in splits for c in _LETTERS}
    ordinary = _web2()[0]
    return any(e in ordinary or e in MODERN_WORDS for e in edits if e != w)


def is_proper_noun(word: str) -> bool:
    """Is ``word`` a proper noun of the dictionary (a name or place) and not also an ordinary word?"""
    return word.lower() in _web2()[1]


__all__ = ["ALLOW_CAPS", "COMMON_WORD_NAMES", "FIRST_NAMES", "MODERN_WORDS", "SURNAMES", "is_ordinary",
           "is_proper_noun", "near_ordinary"]
