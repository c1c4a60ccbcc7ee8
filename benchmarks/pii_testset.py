"""A seeded PII test set of our own: short counselling exchanges with planted identifiers of every kind, each with
its exact position, plus identifier-free sentences for the false-redaction rate.

Evidence: none beyond its own construction; every sentence, name, place and number here was written or generated
for this project (no corpus text). The name and place pools deliberately include many entries that are NOT in the
redactor's own lists (alliance.llm.pii_lexicon), so cue and dictionary rules are tested, not list look-ups.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass, field


# -- pools (written for this benchmark) ------------------------------------------------------------------------
def _split(block: str) -> list[str]:
    return block.split()


FIRST = _split("""Siobhan Aoife Niamh Oisin Grainne Tadhg Bronwen Eilidh Kemi Folake Chiamaka Thandiwe Sipho Nkechi Yaw Kofi
Anaya Ishaan Vihaan Dhruv Harshita Mehreen Bushra Faisal Rizwan Xin Jun Yuki Haruto Sakura Minh Thanh Linh Bartosz
Grzegorz Zuzanna Radek Lukas Matteo Lorenzo Alessia Thiago Joaquin Valentina Esperanza Marisol Hamish Ewan Morag
Alasdair Catriona Tegan Carys Iwan Bethan Maeve Orla Cormac Fionn Darragh Roisin Kacper Sarah James Emma Oliver Priya
Mohammed Fatima Daniel Chloe Liam Olivia Jack Sophie Ryan Hannah Tomasz Amara Declan Leila Callum Zainab Kieran
Deepak Jasmine Marcus Nadia Reuben Imogen Jolene Delroy Precious Tremaine Shanice Krystal Ashanti Brody Kayden Paige
Grace Rose Will Mark Faith Hope""")
LAST = _split("""Featherstone Ogunleye Nwosu Abernethy Szymanski Wisniewski Castellanos Ferreira Haddad Mahmood Choudhury
Bhattacharya Tanaka Nakamura Pham McGowan O'Sullivan Fitzpatrick Gallagher Ramsay Blackwood Okafor Patel Kowalski
Murphy Byrne Kaur Nguyen Walsh Mensah Henderson Lindqvist Achterberg Delacroix Oyelaran Brown White Green Baker Mason
Hill Wood Fox Rice Smith Jones Campbell Thornbury Ashworth Pemberton Vasquez Kaminski Obuya""")
SCRIPT = _split("王秀英 李伟 山田花子 Дмитрий Ольга Αθηνά محمد فاطمة יוסף प्रिया 김민준 Светлана")
TOWNS = [*_split("""Leeds Sheffield Bristol Swindon Wigan Reading Bath Stockport Dundee Galway Limerick Cork Bendigo Toowoomba
Halifax Fresno Tulsa Boise Scranton Dayton Harrogate Wolverhampton Rotherham Barnsley Doncaster Ipswich Luton
Hartlepool Kilkenny Athlone"""), "Milton Keynes", "Stoke-on-Trent", "Newcastle", "St Helens"]
DISTRICTS = [*_split("""Hackney Tooting Brixton Peckham Gorton Headingley Chapeltown Toxteth Drumcondra Ballymun Kensington
Southside Easton Fishponds Handsworth Walthamstow Salford Moseley Clontarf Finglas Harlem Tottenham"""), "Moss Side", "Queens",
             "Sparkbrook", "Kings Heath"]
STREETS = ["Mill Lane", "Station Road", "Elm Grove", "Victoria Street", "Acacia Avenue", "Church Close", "Maple Drive",
           "Oak Crescent", "Hawthorn Way", "Burnside Terrace", "Albert Road", "Cedar Gardens", "Fenwick Street"]
DOMAINS = ["gmail.com", "hotmail.co.uk", "yahoo.com", "outlook.com", "btinternet.com", "icloud.com", "proton.me"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]
NUMWORDS = ["nineteen", "twenty", "thirty-two", "forty", "forty-five", "fifty", "sixty-one", "seventeen"]
US_STATES = ["CA", "TX", "NY", "OH", "PA", "OK", "ID"]

# -- templates: {X} marks the planted value; everything else is ordinary counselling talk ------------------------
T: dict[str, list[str]] = {
    "name_full": ["My name's {X}, my GP referred me.", "Hi, I'm {X}. I've never done this before.",
                  "It was {X} from the housing office who rang me.", "I keep thinking about what {X} said to me.",
                  "The letter was signed by {X}, and I just froze.", "I used to be close to {X} at school."],
    "name_first": ["My sister {X} doesn't know I'm here.", "My partner, {X}, thinks I'm overreacting.",
                   "I'm {X}, by the way.", "I had another row with {X} last night.",
                   "Honestly, {X} is the only one who checks on me.", "{X} says I should just get over it.",
                   "When {X} left, the house went quiet.", "I told my friend {X} about the panic attacks."],
    "surname": ["Dr {X} increased my dose again.", "Mrs {X} next door has been really kind.",
                "I saw Mr {X} at the school gate and hid.", "My consultant, Professor {X}, wants more tests.",
                "{X} from work keeps messaging me.", "The teacher, Ms {X}, called about my son."],
    "name_lower": ["i told {X} everything and she just laughed", "me and {X} broke up on sunday",
                   "my mate {X} came round and we talked", "i miss {X} so much it hurts",
                   "honestly {X} is the reason i got through it"],
    "name_script": ["My grandmother {X} raised me, mostly.", "I still have a letter from {X}.",
                    "My uncle {X} is the one who hurt me.", "Everyone back home just calls her {X}."],
    "name_repeat": ["Thank you, {X}. What brings you here today?", "That sounds really hard, {X}.",
                    "{X}, can I check I've understood you?", "I'm glad you came, {X}."],
    "name_url": ["You can see it all on instagram.com/{X}.", "He posted it at facebook.com/{X} for everyone.",
                 "My blog is https://{X}.blogspot.com if you want to read it."],
    "email": ["You can email me at {X} if the call drops.", "My email is {X}.", "Send it to {X}, that's fine."],
    "url": ["I found it on {X} at 3am.", "The group's page is {X} if that helps.", "Someone linked me {X}."],
    "phone": ["My number is {X}.", "Call me on {X} after six.", "The crisis line gave me {X} to ring.",
              "If I don't answer, try my mum on {X}."],
    "address": ["I live at {X} now, on my own.", "We moved to {X} in the spring.",
                "The flat is {X}, above the chip shop.", "Send the letter to {X}."],
    "postcode": ["My postcode is {X}.", "It's the only surgery in {X}.", "We're in {X}, near the park."],
    "dob": ["I was born on {X}, if you need it.", "My date of birth is {X}.", "DOB {X}.",
            "I was born in {X}, so I'm the oldest."],
    "date": ["On {X} I finally told them.", "Since {X} nothing has been the same.",
             "It happened on {X}, just before Christmas.", "My appointment is on {X}."],
    "age": ["I'm {X} and I feel like I've wasted it.", "My son is {X}, and he notices everything.",
            "She was only {X} when it started.", "I'm {X}, but I feel ancient.", "He turned {X} last week."],
    "town": ["I grew up in {X} and couldn't wait to leave.", "We moved to {X} last year for his job.",
             "I'm from {X} originally.", "My family are all still in {X}.", "{X} just feels grey to me now."],
    "district": ["I live in {X} now, with my cousin.", "The flat in {X} was damp and cold.",
                 "I walk around {X} when I can't sleep.", "Things in {X} have got rougher."],
    "national_id": ["My NI number is {X}.", "My NHS number is {X}, the letter says.",
                    "They asked for my social security number, {X}.", "My PPS number is {X}.",
                    "My patient number is {X}, if that helps.", "The case reference is {X}."],
}

#: Identifier-free counselling sentences: every word here must survive redaction (the false-redaction rate).
ORDINARY = """I feel like I'm drowning most days.
Sunday nights are the worst, the dread starts around six.
It sounds like you've been carrying a lot on your own.
What would be different if things got a little better?
My GP said CBT might help, but the waiting list is long.
Honestly, Facebook just makes me feel worse about myself.
Will you be here next week, the same time?
Grace, kindness, patience: I don't have any left.
We spent Christmas apart this year and it was awful.
Lockdown was hard, and I never really came out of it.
I've been texting less and sleeping more.
Can we talk about the panic attacks?
Work has been stressful since the restructure.
I lost my job in March and haven't told anyone.
That took real courage to say out loud.
I keep overthinking every conversation.
My mum and dad argue constantly.
Mark my words, it will happen again.
I scored 12 out of 27 on that questionnaire.
The meds help a bit, but I'm tired all the time.
Brown bread, tea, and bed: that's my whole evening.
Reading used to calm me down, now I can't focus.
I go to the gym on Mondays and Thursdays.
Hope is a strange word for me right now.
You mentioned feeling invisible at home.
It's been about three weeks since I slept properly.
I want to stop drinking before it gets worse.
Let's look at what helped last time.
Sometimes I sit in the car for an hour before going in.
The Samaritans were kind when I rang them.
She said I was being dramatic, and I believed her.
I don't know why I'm crying, sorry.
Rose-tinted glasses, that's what my friends say I wear.
My anxiety spikes in the morning, around eight.
I finished the workbook you gave me.
Being around people feels exhausting.
It's like a fog that never lifts.
My brother lives abroad and we rarely speak.
We could try a small step this week.
I've been on sertraline for two years.
I realy dont know what to do anymore, its too much.
My freind said I should try therapy, so here I am.
I cant stop thinking about it, definately not sleeping.
i just feel so tired all the time and nobody gets it
honestly idk why im even here tbh
i texted my mum but she didnt reply
ok so basically everything went wrong at work again
we argued again last nite and i said things i regret
im trying to be more mindfull like you said
its been a rough week, thx for listening""".splitlines()


@dataclass
class Planted:
    turn: int
    start: int
    end: int
    kind: str
    value: str


@dataclass
class Dialogue:
    turns: list[str] = field(default_factory=list)
    planted: list[Planted] = field(default_factory=list)
    ordinary_turns: list[int] = field(default_factory=list)


def _digits(r: random.Random, n: int) -> str:
    return "".join(r.choice(string.digits) for _ in range(n))


def _value(kind: str, r: random.Random) -> str:
    first, last = r.choice(FIRST), r.choice(LAST)
    if kind == "name_full":
        return f"{first} {last}"
    if kind in ("name_first", "name_repeat"):
        return first
    if kind == "surname":
        return last
    if kind == "name_lower":
        return r.choice(FIRST[:60]).lower()  # the unusual names: everyday-word names in lower case are words
    if kind == "name_script":
        return r.choice(SCRIPT)
    if kind == "name_url":
        return f"{first.lower()}.{last.lower().replace(chr(39), '')}{r.choice(['', _digits(r, 2)])}"
    if kind == "email":
        return f"{first.lower()}.{last.lower().replace(chr(39), '')}{_digits(r, 2)}@{r.choice(DOMAINS)}"
    if kind == "url":
        return r.choice([f"https://www.{last.lower()}-support.org/forum/{_digits(r, 4)}",
                         f"www.{first.lower()}{last.lower()}.co.uk", f"http://bit.ly/{_digits(r, 3)}abc"]
                        ).replace("'", "")
    if kind == "phone":
        return r.choice([f"07{_digits(r, 3)} {_digits(r, 6)}", f"+44 7700 900{_digits(r, 3)}",
                         f"({_digits(r, 3)}) {_digits(r, 3)}-{_digits(r, 4)}", f"087 {_digits(r, 3)} {_digits(r, 4)}",
                         f"0161 {_digits(r, 3)} {_digits(r, 4)}", f"07{_digits(r, 9)}"])
    if kind == "address":
        n = r.randint(1, 240)
        return r.choice([f"{n} {r.choice(STREETS)}", f"Flat {r.randint(1, 9)}, {n} {r.choice(STREETS)}",
                         f"{n} {r.choice(STREETS)}, {r.choice(TOWNS)}",
                         f"{n} {r.choice(STREETS)}, {r.choice(TOWNS)}, {r.choice(US_STATES)} {_digits(r, 5)}"])
    if kind == "postcode":
        letters = string.ascii_uppercase
        return f"{r.choice(letters)}{r.choice(letters)}{r.randint(1, 20)} {r.randint(1, 9)}{r.choice('ABDEFGHJLNPQRSTUWXYZ')}{r.choice('ABDEFGHJLNPQRSTUWXYZ')}"
    if kind in ("dob", "date"):
        d, m, y = r.randint(1, 28), r.randint(1, 12), r.randint(1950, 2024)
        forms = [f"{d}/{m:02d}/{y}", f"{d} {MONTHS[m - 1]} {y}", f"{MONTHS[m - 1]} {d}, {y}", f"{d}th of {MONTHS[m - 1]}",
                 f"{y}-{m:02d}-{d:02d}"]
        if kind == "dob":
            forms.append(str(y))
        return r.choice(forms)
    if kind == "age":
        return r.choice([str(r.randint(4, 90)), f"{r.randint(4, 90)} years old", r.choice(NUMWORDS)])
    if kind == "town":
        return r.choice(TOWNS)
    if kind == "district":
        return r.choice(DISTRICTS)
    if kind == "national_id":
        return r.choice([f"QQ {_digits(r, 2)} {_digits(r, 2)} {_digits(r, 2)} {r.choice('ABCD')}",
                         f"{_digits(r, 3)} {_digits(r, 3)} {_digits(r, 4)}", f"{_digits(r, 3)}-{_digits(r, 2)}-{_digits(r, 4)}",
                         f"{_digits(r, 7)}{r.choice('ABCDEFGHTW')}", f"{_digits(r, 8)}", f"AB{_digits(r, 6)}"])
    raise ValueError(kind)


#: Per kind, the templates its value fits (age words fit "aged"/"turned" forms; a bare year only "born in").
def _template(kind: str, value: str, r: random.Random) -> str:
    opts = T[kind]
    if kind == "dob":
        opts = [t for t in opts if ("born in" in t) == value.isdigit()]
    if kind == "age" and not value.isdigit():
        opts = [t for t in opts if "son is" not in t and "was only" not in t] or opts
    return r.choice(opts)


def make_dialogues(seed: int = 13, per_kind: int = 320) -> list[Dialogue]:
    """``per_kind`` planted identifiers of every kind in short client/counsellor exchanges (seeded)."""
    r = random.Random(seed)
    jobs = [k for k in T for _ in range(per_kind)]
    r.shuffle(jobs)
    out = []
    for kind in jobs:
        d = Dialogue()
        value = _value(kind, r)
        if kind == "name_repeat":  # the client says the name once; the counsellor's later use is what is scored
            d.turns.append(f"My name is {value}.")
            d.turns.append(r.choice(ORDINARY))
            d.ordinary_turns.append(1)
        else:
            d.turns.append(r.choice(ORDINARY))
            d.ordinary_turns.append(0)
        tpl = _template(kind, value, r)
        start = tpl.index("{X}")
        d.planted.append(Planted(len(d.turns), start, start + len(value), kind, value))
        d.turns.append(tpl.replace("{X}", value))
        d.turns.append(r.choice(ORDINARY))
        d.ordinary_turns.append(len(d.turns) - 1)
        if kind == "name_url":  # score only the name inside the link
            p = d.planted[-1]
            d.planted[-1] = Planted(p.turn, p.start, p.end, kind, p.value)
        out.append(d)
    return out


KINDS = tuple(T)
#: The groups the targets are stated for.
NAME_KINDS = ("name_full", "name_first", "surname", "name_lower", "name_script", "name_repeat", "name_url")
DIRECT_KINDS = ("email", "url", "phone", "address", "postcode", "dob", "national_id")
OTHER_KINDS = ("date", "age", "town", "district")
