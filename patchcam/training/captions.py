"""Person / no-person labels from image captions (Flickr8k: five human captions a photo).

A caption "mentions a person" when one of its words names one (man, girls, skier, crowd, ...).
The rule, per photo:
  - at least two of its captions mention a person  -> person;
  - none does                                        -> no_person;
  - exactly one does                                 -> left out (ambiguous: a statue, a
    poster, a distant figure one annotator noticed; guessing would teach the wrong thing).
"""

from __future__ import annotations

import re

# Words that name people (singular and plural). Pronouns are left out on purpose: "a dog
# carries its toy" and "a man walks his dog" differ in the noun, not the pronoun.
PERSON_WORDS = frozenset("""
man men woman women boy boys girl girls child children kid kids baby babies toddler toddlers
person persons people lady ladies guy guys gentleman gentlemen adult adults teenager
teenagers teen teens youth youths infant infants family families couple crowd crowds
audience spectators spectator player players athlete athletes skier skiers snowboarder
snowboarders surfer surfers biker bikers cyclist cyclists bicyclist bicyclists rider riders
climber climbers swimmer swimmers runner runners jogger joggers dancer dancers worker
workers skateboarder skateboarders skater skaters hiker hikers motorcyclist motorcyclists
wrestler wrestlers boxer boxers soldier soldiers officer officers policeman policemen
student students team teams tourist tourists pedestrian pedestrians performer performers
musician musicians singer singers drummer guitarist goalie batter pitcher catcher referee
cowboy cowboys bride groom mother father mom dad daughter son brother sister friends
someone somebody individual individuals fans fan
""".split())

_WORD = re.compile(r"[a-z]+")
MIN_PERSON_CAPTIONS = 2  # mentions needed to call a photo "person"


def mentions_person(caption: str) -> bool:
    return any(w in PERSON_WORDS for w in _WORD.findall(caption.lower()))


def label(captions: list[str]) -> str | None:
    """"person", "no_person", or None when the captions disagree (see the module doc)."""
    n = sum(mentions_person(c) for c in captions)
    if n >= MIN_PERSON_CAPTIONS:
        return "person"
    return "no_person" if n == 0 else None
