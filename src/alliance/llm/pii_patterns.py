"""Patterns for direct identifiers in English text: e-mails, URLs and handles, phone numbers, national and record
numbers, postal addresses, dates (with dates of birth), ages, and the cues that announce a name or a place.

Evidence: formats of UK, Irish, US and Canadian identifiers (NI number, NHS number, PPS number, SSN, SIN, ZIP and
postcodes), written for this project and measured by benchmarks/validate_redaction.py.
"""

from __future__ import annotations

import re

_NUMWORD = (r"(?:(?:twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety)(?:[- ](?:one|two|three|four|five|six|"
            r"seven|eight|nine))?|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|"
            r"fifteen|sixteen|seventeen|eighteen|nineteen|a hundred)")
_MONTH = (r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|Jun(?:e)?|Jul(?:y)?|Aug(?:ust)?|"
          r"Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)")
_STREET = (r"(?:Street|St|Road|Rd|Avenue|Ave|Lane|Ln|Drive|Close|Court|Ct|Crescent|Cres|Place|Pl|Square|Sq|"
           r"Terrace|Way|Boulevard|Blvd|Gardens|Grove|Hill|Park|Row|Walk|Mews|Parade|Rise|View|Green|Estate)")

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
URL = re.compile(
    r"(?i)\b(?:https?://|www\.)[^\s<>\"']+"
    r"|\b[a-z0-9][a-z0-9-]*(?:\.[a-z0-9-]+)*\.(?:com|org|net|edu|gov|io|co|uk|ie|me|info|biz|app|dev|ly|tv|us|ca|"
    r"au|nz|de|fr|es|it|nl|in)\b(?:/[^\s<>\"']*)?"
    r"|(?<![\w@.])@[A-Za-z0-9_](?:[A-Za-z0-9_.]{0,28}[A-Za-z0-9_])?\b")
PHONE = re.compile(r"(?<![\w/])(?:\+\d{1,3}[\s.-]?)?(?:\(0\)\s?)?(?:\(\d{2,5}\)[\s.-]?)?\d{2,6}(?:[\s.-]\d{2,6}){1,4}"
                   r"(?![\w/])|(?<![\w/])\+?\d{7,15}(?![\w/])")
NATIONAL_ID = re.compile(
    r"(?i)\b[A-Z]{2}\s?\d{2}\s?\d{2}\s?\d{2}\s?[A-D]\b"                   # UK National Insurance number
    r"|\b\d{3}[- ]\d{2}[- ]\d{4}\b"                                      # US Social Security number
    r"|\b\d{3}[- ]?\d{3}[- ]?\d{4}\b"                                    # NHS number
    r"|\b\d{3}[- ]\d{3}[- ]\d{3}\b"                                      # Canadian SIN
    r"|\b\d{7}[A-W][A-IW]?\b"                                            # Irish PPS number
    r"|\b[A-Z]{1,3}\d{6,10}[A-Z]?\b")                                    # passport, licence, record numbers
ID_CUE = re.compile(
    r"(?i)\b(?:nhs|ni|national insurance|social security|ssn|sin|pps|ppsn|passport|patient|hospital|mrn|chi|"
    r"medicare|medicaid|insurance|policy|licen[cs]e|id|reference|ref|case|account|member|student|employee|staff|"
    r"tax|tfn|health card|record)\s*(?:number|no\.?|num|#|id|code)?\s*[,:-]?\s*(?:is|was)?\s*[:-]?\s*"
    r"(?-i:([A-Z0-9][A-Z0-9/ -]{2,20}[A-Z0-9]))")
_NUM = r"(?<![\w/])(?:\d{1,5}[A-Za-z]?)"
ADDRESS = re.compile(
    rf"(?:\b(?i:flat|apt|apartment|unit|suite)\s+\d+[A-Za-z]?,?\s+)?{_NUM},?\s+(?:[A-Z][a-z'’]+\s+){{1,3}}"
    rf"{_STREET}\b\.?(?:,?\s+(?:[A-Z][a-z]+,?\s+){{0,2}}(?:[A-Z]{{2}}\s+)?\d{{5}}(?:-\d{{4}})?\b"
    r"|,\s+(?:St\.?\s+)?[A-Z][a-z'’]+(?:[\s-](?:on-|upon-)?[A-Z][a-z'’]+)?\b)?"
    rf"|{_NUM},?\s+(?:[a-z'’]+\s+){{1,3}}(?:street|road|avenue|lane|drive|close|crescent|terrace|gardens|grove|"
    r"way|place|square|mews)\b"
    r"|\b(?:[A-Z][a-z'’]+\s+){1,2}(?:Street|Road|Avenue|Lane|Drive|Close|Crescent|Terrace|Gardens|Grove|Estate|"
    r"Boulevard|Mews)\b"
    r"|(?i:\bP\.?\s?O\.?\s+Box\s+\d+)")
POSTCODE = re.compile(r"\b(?i:[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2})\b"
                      r"|\b[A-Z]{2}\s+\d{5}(?:-\d{4})?\b"
                      r"|(?i:\b(?:zip|zip code|postcode|post code|eircode)\s*(?:is|:)?\s*)([A-Z0-9]{3,4}\s?[A-Z0-9]{3,4})")
DATE = re.compile(
    rf"\b\d{{1,4}}[/.-]\d{{1,2}}[/.-]\d{{1,4}}\b"
    rf"|\b\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?(?i:{_MONTH})\b\.?(?:,?\s+\d{{4}})?"
    rf"|\b(?i:{_MONTH})\s+(?:the\s+)?\d{{1,2}}(?:st|nd|rd|th)?\b(?:,?\s+\d{{4}})?"
    rf"|\b(?i:{_MONTH})\s+\d{{4}}\b")
#: A year or day after a birth cue ("born in 1987", "DOB: 19th"); full dates are DATE's.
BIRTH = re.compile(r"(?i:\b(?:born(?:\s+(?:in|on))?|date of birth|d\.?o\.?b\.?|birthday(?:\s+is)?)\s*:?\s*)"
                   r"(\d{4}|\d{1,2}(?:st|nd|rd|th)?)\b")
AGE = re.compile(
    rf"(?i)\b(?:\d{{1,3}}|{_NUMWORD})(?:\s*-\s*|\s+)(?:years?|yrs?)(?:\s*-\s*|\s+)old\b"
    rf"|\b(?:\d{{1,3}}|{_NUMWORD})[- ]year[- ]old\b"
    rf"|\b\d{{1,3}}\s?(?:yo|y/o|yrs)\b"
    rf"|\b(?:aged?|turned|turning|turns|age of|at the age of)\s+(?:\d{{1,3}}|{_NUMWORD})\b(?:\s+years?\s+old\b)?"
    rf"|\b(?:i'm|i am|i’m|she's|he's|she is|he is|they're|they are|(?:son|daughter|kid|child|boy|girl|brother|"
    rf"sister) is|(?:i|he|she|they|we) (?:was|were))\s+(?:(?:only|just|barely|nearly|almost|about)\s+)?"
    rf"(?:\d{{1,3}}|{_NUMWORD})(?:\s+years?\s+old\b)?(?=\s*(?:[.,;!?)]|$|\b(?:now|this|next|and|but|in|when|at|until|before|after|so|with|too)\b))"
    r"|\bin\s+(?:my|his|her|their)\s+(?:early\s+|mid\s+|mid-|late\s+)?(?:teens|twenties|thirties|forties|"
    r"fifties|sixties|seventies|eighties|nineties|[2-9]0s)\b")

TITLE = re.compile(r"\b(?i:Mr|Mrs|Ms|Miss|Mx|Dr|Doctor|Prof|Professor|Nurse|Father|Sister|Aunt|Uncle|Auntie|"
                   r"Grandma|Grandpa|Nana|Sir|Dame|Rev|Reverend|Rabbi|Imam|Pastor|Coach|Judge|Officer)\.?\s+$")
NAME_CUE = re.compile(
    r"(?i)(?:\bmy name is|\bname's|\bname is|\bname was|\bi'm called|\bi am called|\bcall me|\bthis is|\bit's|"
    r"\bi'm|\bi am|\bi’m|\bnamed|\bcalled|\bhi|\bhello|\bhey|\bthanks|\bthank you|\bdear|\bsorry|\bbye|\bcheers|"
    r"\blove|\bwith|\bsaw|\btold|\basked|\bmet|\bmiss|\bmisses|\bvisiting|\bvisited|\b(?:my|our|his|her|their|"
    r"your)\s+(?:(?:best|old|little|big|older|younger|new|ex-|step|late)\s*)?(?:partner|husband|wife|son|"
    r"daughter|friend|boss|brother|sister|mum|mom|mother|dad|father|cousin|girlfriend|boyfriend|fianc[eé]e?|"
    r"colleague|manager|teacher|therapist|counsellor|counselor|gp|doctor|nurse|social worker|flatmate|roommate|"
    r"housemate|neighbour|neighbor|ex|stepdad|stepmum|stepmom|nan|gran|grandma|grandad|grandpa|grandmother|"
    r"grandfather|uncle|aunt|auntie|niece|nephew|baby|child|kid|mate|pal|coach|landlord|supervisor|worker|"
    r"keyworker|carer|psychiatrist|psychologist|solicitor|lawyer|sibling|twin|bestie|lecturer|tutor|dog|cat))"
    r"[,:]?\s+$")
#: What follows a person's name more than any other capitalised word ("Brown from work keeps ...", "Hope said").
PERSON_AFTER = re.compile(r"['’]?s?\s+(?:says|said|told|texted|rang|called|messaged|emailed|from work|from school|"
                          r"from the office|next door|from church|from college|from uni)\b")
PLACE_CUE = re.compile(r"(?i)\b(?:in|from|to|near|at|around|outside|into|towards|visit|visiting|via|of|across|"
                       r"through|past|called)\s+$")

__all__ = [
            "ADDRESS",
            "AGE",
            "BIRTH",
            "DATE",
            "EMAIL",
            "ID_CUE",
            "NAME_CUE",
            "NATIONAL_ID",
            "PERSON_AFTER",
            "PHONE",
            "PLACE_CUE",
            "POSTCODE",
            "TITLE",
            "URL",
]
