"""Writes bench/eval/dataset.jsonl.gz: a deterministic conversational retrieval data set.

    .venv/bin/python bench/eval/generate.py          # rewrites the file byte for byte
    .venv/bin/python bench/eval/generate.py --check  # fails if the committed file differs

Standard library only; one fixed seed. Each user is a persona with a life (home, job, pets,
family, tastes, trips, plans, worries, tricks) told over several dated chat sessions, padded
with small talk that shares words with the facts (the neighbour's dog, a colleague's trip) so
that word overlap alone is not enough. Questions are tied to the turns that answer them.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import random
import sys
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

SEED = 20240611
USERS = 24
OUT = Path(__file__).resolve().parent / "dataset.jsonl.gz"


def words(text: str) -> list[str]:
    return [w.strip() for w in text.split("|") if w.strip()]


# --- Vocabularies --------------------------------------------------------------------------

FIRST_F = words(
    "Ana|Maria|Sofia|Lena|Priya|Chloe|Hannah|Yuki|Amara|Ingrid|Elena|Nora|Zoe|Fatima|Clara|"
    "Mia|Leila|Rosa|Greta|Aiko|Julia|Marta|Olivia|Nadia|Camille"
)
FIRST_M = words(
    "Tom|Lucas|Mateo|Jonas|Ravi|Omar|Daniel|Kenji|Felix|Hugo|Marco|Samuel|Erik|Diego|Noah|"
    "Ivan|Pedro|Theo|Karim|Oscar|Bruno|Liam|Anton|Malik|Paul"
)
CITIES = words(
    "Berlin|Lisbon|Madrid|Oslo|Vienna|Toronto|Denver|Kyoto|Austin|Dublin|Prague|Melbourne|"
    "Seattle|Porto|Munich|Edinburgh|Boston|Copenhagen|Barcelona|Montreal|Helsinki|Zurich|"
    "Valencia|Krakow|Rotterdam|Glasgow|Chicago|Vancouver|Stockholm|Milan"
)
TRIP_PLACES = words(
    "Iceland|Morocco|Japan|Peru|Sicily|the Scottish Highlands|Crete|Vietnam|Norway|Portugal|"
    "Mexico City|Istanbul|New Zealand|the Azores|Croatia|Tuscany|Buenos Aires|Cape Town|"
    "Seoul|Marrakesh|the Dolomites|Bali|Patagonia|Amsterdam|Lapland"
)
TRIP_REASONS = words(
    "a friend's wedding|a work conference|a hiking week|my cousin's graduation|a surf camp|"
    "a food tour|a photography workshop|a long weekend away|a yoga retreat|a family reunion"
)
JOBS = words(
    "nurse|software engineer|architect|primary school teacher|accountant|chef|pharmacist|"
    "graphic designer|electrician|journalist|veterinarian|data analyst|physiotherapist|"
    "civil engineer|librarian|dentist|product manager|translator|lawyer|carpenter"
)
JOB_PARAPHRASE = {
    # What a dense model should know about the job, worded without the job's own words.
    "nurse": "cares for patients on a hospital ward",
    "software engineer": "writes code",
    "architect": "designs buildings",
    "primary school teacher": "teaches young children",
    "accountant": "handles company finances and taxes",
    "chef": "cooks in a restaurant kitchen",
    "pharmacist": "dispenses medicine",
    "graphic designer": "creates visual branding and layouts",
    "electrician": "installs wiring",
    "journalist": "writes news stories",
    "veterinarian": "treats sick animals",
    "data analyst": "crunches numbers in spreadsheets and dashboards",
    "physiotherapist": "helps people recover from injuries",
    "civil engineer": "plans bridges and roads",
    "librarian": "looks after books",
    "dentist": "fixes teeth",
    "product manager": "decides what features a product gets",
    "translator": "converts documents between languages",
    "lawyer": "gives legal advice",
    "carpenter": "builds furniture from wood",
}
COMPANIES = words(
    "Helix Labs|Northwind|Brightpath|St. Mary's Hospital|Kestrel Studio|Bluefin Analytics|"
    "Oakridge School|Lumen Pharmacy|Greenline Energy|Harbor & Co|Vantage Legal|Copperleaf|"
    "Riverside Clinic|Atlas Logistics|Meridian Bank|Pinecone Media|Tallwood Builders|"
    "Orbit Software|Summit Dental|Ferrous Works|City Library|Nimbus Cloud"
)
SPECIES = words("dog|cat|rabbit|parrot|tortoise|hamster|ferret|guinea pig")
PET_NAMES = words(
    "Biscuit|Luna|Pepper|Mochi|Rex|Olive|Ziggy|Nala|Otis|Waffles|Juniper|Pixel|Bean|Maple|"
    "Ginger|Pretzel|Socks|Nugget|Clementine|Bruno|Tofu|Pickles|Basil|Ollie"
)
VET_ISSUES = words(
    "a limp in the back leg|an ear infection|eating a sock|a rash on the belly|losing weight|"
    "a broken claw|a tooth abscess|sneezing all week|an upset stomach|a swollen paw"
)
SIBLING = words("sister|brother")
PARTNER = {"f": words("husband|boyfriend|partner"), "m": words("wife|girlfriend|partner")}
MUSIC = words(
    "jazz|indie folk|techno|classical piano|90s hip hop|bossa nova|heavy metal|k-pop|blues|"
    "synthwave|reggae|opera|punk rock|afrobeat|country"
)
CUISINES = words(
    "Thai|Ethiopian|Japanese|Mexican|Lebanese|Korean|Italian|Georgian|Peruvian|Indian|"
    "Vietnamese|Greek|Turkish|Sichuan"
)
HATED_FOODS = words(
    "olives|coriander|mushrooms|blue cheese|liquorice|eggplant|anchovies|raisins|okra|"
    "beetroot|oysters|celery"
)
HOBBIES = words(
    "bouldering|birdwatching|trail running|pottery|sailing|salsa dancing|woodworking|"
    "open-water swimming|board games with friends|film photography|mountain biking|"
    "volunteering at the food bank|baking bread|kayaking|chess at the park"
)
COLOURS = words("teal|mustard yellow|forest green|burgundy|lavender|navy blue|coral|charcoal")
SEASONS = words("autumn|winter|spring|summer")
TEAMS = words(
    "Benfica|Celtic|Borussia Dortmund|the Boston Celtics|Ajax|the Toronto Raptors|Napoli|"
    "the Chicago Cubs|Rapid Wien|Atletico Madrid"
)
BANDS = words(
    "Radiohead|Fleetwood Mac|Khruangbin|Arctic Monkeys|Bon Iver|Daft Punk|ABBA|Tame Impala|"
    "Portishead|The Cure|Massive Attack|Florence and the Machine|Nick Cave|Beach House|"
    "Phoenix|Bjork|Sigur Ros|Vampire Weekend|Lorde|Hozier"
)
DRINKS = words(
    "a double espresso|black coffee|green tea|a flat white|chai|yerba mate|oat milk latte|"
    "hot lemon water|matcha|rooibos"
)
ALLERGENS = words(
    "peanuts|shellfish|penicillin|cats|pollen|sesame|latex|wasp stings|kiwi|dust mites"
)
INSTRUMENTS = words("guitar|piano|violin|cello|drums|ukulele|saxophone|trumpet|flute|bass")
LANGUAGES = words(
    "Portuguese|Japanese|Spanish|German|Italian|Korean|Arabic|Dutch|Greek|Mandarin|Swedish"
)
SURGERIES = words(
    "knee surgery|wisdom tooth removal|shoulder operation|appendix operation|"
    "laser eye surgery|hernia repair"
)
EXAMS = words(
    "driving test|CPA exam|Spanish B2 exam|scuba certification|PhD defence|bar exam|"
    "sommelier level one|first aid certificate"
)
CAR_MAKES = words("Skoda Octavia|Volvo estate|Toyota Prius|Fiat Panda|Tesla Model 3|VW Golf")
CAR_COLOURS = words("blue|red|silver|black|white|green")
RESTAURANTS = words(
    "Tasca do Chico|Little Saigon|Casa Nonna|The Copper Pot|Bar Pintxo|Sakura Garden|"
    "Mama Rosa's|El Farolito|Blue Lantern|Kebab Palace|The Hungry Fox|Maison Lune"
)
DISHES = words(
    "grilled octopus|pho|truffle gnocchi|short rib|pintxos|omakase|lasagne|carnitas|dim sum|"
    "lamb kofta|fish pie|duck confit"
)
SCHOOLS = words("primary school|high school|university|our first job|summer camp|kindergarten")
WORRIES = {
    # worry: (turn wording, paraphrased question wording without shared content words)
    "my thesis defence": "the big academic presentation",
    "the layoffs at work": "possibly losing employment",
    "my dad's health": "a parent being unwell",
    "the mortgage payments": "paying back the home loan",
    "the job interview on Friday": "an upcoming hiring conversation",
    "my sister's wedding speech": "speaking at a family celebration",
    "the flat renovation": "redoing the apartment",
    "my first marathon": "a long-distance race",
    "the move abroad": "relocating to another country",
    "my driving lessons": "learning to steer a car",
}
FEELINGS = words("really anxious|quite nervous|stressed|worried sick|uneasy|on edge")
PLANS = words(
    "repaint the living room|visit my grandparents|start a pottery course|run a 10k|"
    "adopt a second cat|learn to surf|take a cooking class|redo the garden|go camping|"
    "finish my novel draft|buy a new bike|book a trip to Japan"
)
MONTHS = words(
    "January|February|March|April|May|June|July|August|September|October|November|December"
)
HOWTOS = [
    # (task in the turn, the same task in other words, the trick)
    (
        "descale the espresso machine",
        "clean mineral build-up out of the coffee maker",
        "run citric acid through it twice, then plain water",
    ),
    (
        "get crispy roast potatoes",
        "make oven spuds crunchy",
        "parboil them with a pinch of baking soda and shake them",
    ),
    (
        "fall asleep fast",
        "drift off quickly at night",
        "breathe in for four counts, hold for seven, out for eight",
    ),
    (
        "remove red wine stains",
        "get merlot marks out of fabric",
        "pour salt on immediately and then cold water",
    ),
    (
        "keep basil alive",
        "stop the herb plant from dying",
        "water it from below and pinch off the flowers",
    ),
    (
        "fix a squeaky door",
        "silence a creaking hinge",
        "rub a bit of bar soap on the hinge pin",
    ),
    (
        "cook perfect rice",
        "make fluffy grains on the stove",
        "rinse it three times and let it rest ten minutes off the heat",
    ),
    (
        "unclog the shower drain",
        "clear a blocked bathroom plughole",
        "use baking soda, vinegar and a kettle of boiling water",
    ),
    (
        "peel garlic quickly",
        "skin cloves in seconds",
        "shake the cloves hard between two bowls",
    ),
    (
        "stop my glasses fogging up",
        "keep lenses clear when wearing a mask",
        "wash them with a drop of dish soap and let them air dry",
    ),
    (
        "ripen avocados faster",
        "soften hard guacamole fruit",
        "put them in a paper bag with a banana",
    ),
    (
        "sharpen kitchen knives",
        "put an edge back on blades",
        "use the whetstone at fifteen degrees, ten strokes per side",
    ),
]

# Small talk: fills each session and shares words with the facts without answering them.
FILLER = [
    "The weather in {city} was {weather} today.",
    "I watched a documentary about {topic} last night.",
    "Work was {adj} today, so many meetings.",
    "My neighbour's {species} kept me awake all night.",
    "A colleague recommended a podcast about {topic}.",
    "I need to remember to buy {item} tomorrow.",
    "Traffic on the way home was {adj}.",
    "Can you suggest a recipe with {ingredient}?",
    "I read an article claiming {topic} is overrated.",
    "Feeling a bit {mood} today, not sure why.",
    "My coworker {name} is flying to {place} for vacation.",
    "Remind me to call {name} on {weekday}.",
    "I tried a new {cuisine} place downtown, it was {adj}.",
    "What's a good way to organise {thing}?",
    "The {thing} in the hallway is a mess again.",
    "{name} from the gym told me about {topic}.",
    "I spent the evening sorting out {thing}.",
    "Any tips for a {adj} {weekday} morning?",
    "My cousin {name} just adopted a {species}.",
    "Listened to some {music} while cleaning, it was fine.",
    "Just finished a book about {topic}, pretty {adj}.",
    "Is it normal to feel {mood} on a {weekday}?",
    "We had {ingredient} soup for dinner.",
    "The bus was late again this {weekday}.",
    "Can you summarise what {topic} is in two lines?",
    "{name} says {place} is lovely in {month}.",
    "I fixed the {thing} myself, quite proud of it.",
    "Someone at work keeps microwaving {ingredient}.",
    "Thinking about getting a new {item} soon.",
    "My friend {name} lives near {city} and loves it.",
    # Near-misses in meaning: other people's pets, homes, jobs, tastes and health.
    "My colleague {name} has a {species} called {petname}.",
    "{name} from book club relocated to {city} last spring.",
    "My neighbour works as a {job} and never stops talking about it.",
    "{name} swears {cuisine} cooking is the best there is.",
    "My friend {name} can't eat {allergen}, dinner parties are tricky.",
    "{name} keeps sending me {music} playlists.",
]
FILL = {
    "weather": words("grey and drizzly|sunny but cold|unbearably hot|windy|foggy|perfect"),
    "topic": words(
        "octopuses|the Roman empire|sleep science|minimalism|crypto|urban gardening|"
        "deep sea fishing|the history of jazz|volcanoes|fermentation|ancient Egypt|"
        "chess openings|space telescopes|bees|typography|the Vikings|tiny houses"
    ),
    "adj": words("exhausting|chaotic|surprisingly calm|boring|great|weird|productive|long"),
    "species": words("dog|cat|parrot|rooster|puppy"),
    "item": words(
        "lightbulbs|dish soap|a phone charger|batteries|new socks|printer paper|bin bags|"
        "a birthday card|coffee filters|sunscreen"
    ),
    "ingredient": words(
        "leeks|chickpeas|pumpkin|spinach|tofu|sweet potato|fennel|lentils|cabbage|feta"
    ),
    "mood": words("tired|restless|low|flat|scattered|grumpy|cheerful|sluggish"),
    "weekday": words("Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday"),
    "thing": words(
        "shoe rack|cable drawer|spice cupboard|bookshelf|garage|photo library|inbox|"
        "wardrobe|bike shed|kitchen tap"
    ),
    "music": words("lo-fi beats|film soundtracks|ambient drone|trip hop|sea shanties"),
}


# --- Building one user ---------------------------------------------------------------------


def fmt_date(day: date) -> str:
    return f"{day.day} {MONTHS[day.month - 1]} {day.year}"


@dataclass
class Turn:
    session: int
    content: str
    day: date
    key: int  # index in UserBuilder.turns; the id is assigned once sessions are laid out
    id: str = ""


@dataclass
class UserBuilder:
    user_id: str
    rng: random.Random
    sessions: int
    dates: list[date]
    gender: str
    turns: list[Turn] = field(default_factory=list)
    questions: list[tuple[str, str, list[int]]] = field(default_factory=list)
    used: dict[str, list[str]] = field(default_factory=dict)

    def pick(self, pool: list[str], slot: str) -> str:
        """A value not yet used by this user in `slot` (so answers are unambiguous)."""
        taken = self.used.setdefault(slot, [])
        value = self.rng.choice([v for v in pool if v not in taken])
        taken.append(value)
        return value

    def session(self, low: int = 0, high: int | None = None) -> int:
        high = self.sessions - 1 if high is None else high
        return self.rng.randint(low, max(low, high))

    def say(self, session: int, text: str) -> int:
        key = len(self.turns)
        self.turns.append(Turn(session, text, self.dates[session], key))
        return key

    def event_day(self, session: int) -> date:
        # Events are told a few days after they happened.
        return self.dates[session] - timedelta(days=self.rng.randint(1, 20))

    def ask(self, qtype: str, first: str, third: str, keys: list[int]) -> None:
        """First person ("my dog") as the user would ask, or third person ("her dog") as the
        app asks about the user; both forms are kept so the wording varies."""
        pron = {"f": ("she", "her"), "m": ("he", "his")}[self.gender]
        if self.rng.random() < 0.5:
            text = first
        else:
            who = "the user" if self.rng.random() < 0.5 else pron[0]
            poss = "the user's" if who == "the user" else pron[1]
            text = third.replace("{who}", who).replace("{poss}", poss)
            text = text[0].upper() + text[1:]
        self.questions.append((qtype, text, keys))

    def choice(self, options: list[str]) -> str:
        return self.rng.choice(options)


def add_home(u: UserBuilder) -> None:
    c1 = u.pick(CITIES, "city")
    if u.sessions >= 4 and u.rng.random() < 0.7:
        old_s = u.session(0, u.sessions // 2 - 1)
        new_s = u.session(old_s + 1)
        c2 = u.pick(CITIES, "city")
        u.say(
            old_s,
            u.choice(
                [
                    f"I live in {c1}, in a small flat near the old market.",
                    f"Living in {c1} is great, my flat is right by the river.",
                    f"I've lived in {c1} for six years now.",
                ]
            ),
        )
        day = u.event_day(new_s)
        new = u.say(
            new_s,
            u.choice(
                [
                    f"We finally moved to {c2} on {fmt_date(day)}, the new place has a balcony.",
                    f"Relocated to {c2} on {fmt_date(day)}! Boxes everywhere.",
                    f"Since {fmt_date(day)} our address is in {c2}, the move went smoothly.",
                ]
            ),
        )
        u.ask(
            "knowledge-update",
            u.choice(["Where do I live now?", "Which city am I living in these days?"]),
            u.choice(["Where does {who} live now?", "Which city is {who} based in currently?"]),
            [new],
        )
        u.ask(
            "temporal",
            f"When did I move to {c2}?",
            f"When did {{who}} move to {c2}?",
            [new],
        )
    else:
        turn = u.say(
            u.session(),
            u.choice(
                [
                    f"I live in {c1}, in a small flat near the old market.",
                    f"Living in {c1} is great, my flat is right by the river.",
                ]
            ),
        )
        u.ask(
            "paraphrase",
            "Which town do I call home?",
            u.choice(["Which town does {who} call home?", "Where is {poss} home base?"]),
            [turn],
        )


def add_job(u: UserBuilder) -> None:
    j1, co1 = u.pick(JOBS, "job"), u.pick(COMPANIES, "company")
    first = u.say(
        u.session(0, max(0, u.sessions // 2 - 1)),
        u.choice(
            [
                f"I work as a {j1} at {co1}.",
                f"I've been a {j1} at {co1} for three years.",
                f"My job as a {j1} at {co1} keeps me busy.",
            ]
        ),
    )
    if u.rng.random() < 0.5:
        s = u.turns[first].session
        j2, co2 = u.pick(JOBS, "job"), u.pick(COMPANIES, "company")
        new = u.say(
            u.session(s + 1),
            u.choice(
                [
                    f"First day at {co2} today, I'm now a {j2}!",
                    f"I handed in my notice and started as a {j2} at {co2}.",
                ]
            ),
        )
        u.ask(
            "knowledge-update",
            u.choice(["What is my current job?", "Where do I work now?"]),
            u.choice(["What is {poss} current job?", "Where does {who} work now?"]),
            [new],
        )
    else:
        u.ask(
            "paraphrase",
            "What do I do for a living?",
            u.choice(["What does {who} do for a living?", "What is {poss} profession?"]),
            [first],
        )
        u.ask(
            "paraphrase",
            f"Is my occupation one where someone {JOB_PARAPHRASE[j1]}?",
            f"Is {{who}} the kind of professional who {JOB_PARAPHRASE[j1]}?",
            [first],
        )
        u.ask(
            "single-fact",
            "Which company do I work for?",
            "Which company does {who} work for?",
            [first],
        )


def add_pets(u: UserBuilder) -> None:
    count = u.rng.choice([1, 1, 2])
    keys = []
    for _ in range(count):
        species, name = u.pick(SPECIES, "species"), u.pick(PET_NAMES, "pet")
        s = u.session()
        keys.append(
            u.say(
                s,
                u.choice(
                    [
                        f"My {species} {name} is four and still acts like a baby.",
                        f"We have a {species} named {name} at home.",
                        f"{name}, my {species}, knocked a glass off the table again.",
                        f"Our {species} {name} has been sleeping on my laptop.",
                    ]
                ),
            )
        )
        u.ask(
            "single-fact",
            u.choice([f"What is my {species}'s name?", f"What is my {species} called?"]),
            f"What is the name of {{poss}} {species}?",
            [keys[-1]],
        )
        if u.rng.random() < 0.7:
            day = u.event_day(s)
            adopted = u.say(
                s,
                u.choice(
                    [
                        f"We adopted {name} from the shelter on {fmt_date(day)}.",
                        f"{name} came home with us on {fmt_date(day)}.",
                    ]
                ),
            )
            u.ask(
                "temporal",
                f"When did I adopt {name}?",
                f"When did {{who}} get {name}?",
                [adopted],
            )
        if u.rng.random() < 0.7:
            vet = u.say(
                u.session(s),
                f"Took {name} to the vet because of {u.choice(VET_ISSUES)}.",
            )
            u.ask(
                "multi-hop",
                f"Why did my {species} need a check-up?",
                f"Why did {{poss}} {species} need a check-up?",
                [keys[-1], vet],
            )
    if count == 2:
        u.ask(
            "aggregation",
            "How many pets do I have, and what are they?",
            "Which animals live with {who}?",
            keys,
        )
    else:
        u.ask(
            "paraphrase",
            "Do I keep any animals?",
            "What kind of animal shares {poss} home?",
            keys,
        )


def add_family(u: UserBuilder) -> None:
    keys = []
    for _ in range(u.rng.choice([1, 2])):
        rel = u.pick(SIBLING, "sibling")  # never two sisters: "my sister" must be one person
        name = u.pick(FIRST_M if rel == "brother" else FIRST_F, "person")
        city = u.pick(CITIES, "city")
        s = u.session()
        keys.append(
            u.say(
                s,
                u.choice(
                    [
                        f"My {rel} {name} lives in {city} with two kids.",
                        f"My younger {rel} {name} just bought a house in {city}.",
                        f"Visiting my {rel} {name} in {city} is always fun.",
                    ]
                ),
            )
        )
        u.ask(
            "single-fact",
            f"Where does my {rel} {name} live?",
            f"Where does {{poss}} {rel} {name} live?",
            [keys[-1]],
        )
        job = u.choice(JOBS)
        hop = u.say(
            u.session(s),
            u.choice([f"{name} started working as a {job}.", f"{name} is retraining as a {job}."]),
        )
        u.ask(
            "multi-hop",
            f"What is my {rel}'s occupation?",
            f"What is {{poss}} {rel}'s occupation?",
            [keys[-1], hop],
        )
    if len(keys) == 2:
        u.ask(
            "aggregation",
            "How many siblings do I have?",
            "Who are {poss} siblings?",
            keys,
        )
    partner = u.choice(PARTNER[u.gender])
    pname = u.pick(FIRST_M if partner in ("husband", "boyfriend") else FIRST_F, "person")
    if partner == "partner":
        pname = u.pick(FIRST_F + FIRST_M, "person")
    s = u.session()
    p = u.say(s, f"My {partner} {pname} and I have been together for {u.rng.randint(2, 15)} years.")
    u.ask(
        "single-fact", f"What is my {partner}'s name?", f"What is {{poss}} {partner}'s name?", [p]
    )
    u.ask(
        "paraphrase",
        "Who is my significant other?",
        "Who is {poss} significant other?",
        [p],
    )
    if u.rng.random() < 0.6:
        day = u.event_day(u.session())
        wed = u.say(
            u.session(),
            f"Our wedding anniversary is {day.day} {MONTHS[day.month - 1]}, {pname} never forgets.",
        )
        u.ask("temporal", "When did I get married?", "When did {who} get married?", [wed])


def add_work_people(u: UserBuilder) -> None:
    boss = u.pick(FIRST_F + FIRST_M, "person")
    city = u.pick(CITIES, "city")
    s = u.session()
    a = u.say(s, f"My manager {boss} is very supportive about remote days.")
    b = u.say(u.session(s), f"{boss} spent a whole childhood in {city} and still has the accent.")
    u.ask(
        "multi-hop",
        "Where did my manager grow up?",
        "Where did {poss} manager grow up?",
        [a, b],
    )
    friend = u.pick(FIRST_F + FIRST_M, "person")
    rest, dish = u.pick(RESTAURANTS, "restaurant"), u.choice(DISHES)
    s = u.session()
    c = u.say(
        s,
        f"{friend} has been my best friend since {u.choice(SCHOOLS)}.",
    )
    d = u.say(
        u.session(s),
        f"{friend} keeps telling me to try {rest}, the {dish} there is supposedly amazing.",
    )
    u.ask(
        "multi-hop",
        "Which restaurant does my best friend recommend?",
        "Which restaurant does {poss} best friend recommend?",
        [c, d],
    )


def add_preferences(u: UserBuilder) -> None:
    prefs = [
        pref_music,
        pref_cuisine,
        pref_hated,
        pref_hobby,
        pref_colour,
        pref_season,
        pref_team,
        pref_seat,
        pref_answers,
    ]
    u.rng.shuffle(prefs)
    for fn in prefs[: u.rng.randint(6, 9)]:
        fn(u)


def pref_music(u: UserBuilder) -> None:
    genre = u.pick(MUSIC, "music")
    t = u.say(
        u.session(),
        u.choice(
            [
                f"I've been listening to a lot of {genre} lately, it's my favourite music.",
                f"Honestly nothing beats {genre} on a Sunday morning.",
                f"Put on some {genre} for me, that always lifts my mood.",
            ]
        ),
    )
    u.ask(
        "preference",
        "What kind of music do I like?",
        "What kind of music does {who} enjoy?",
        [t],
    )
    u.ask("paraphrase", "What tunes am I into?", "What sounds is {who} into?", [t])


def pref_cuisine(u: UserBuilder) -> None:
    c = u.pick(CUISINES, "cuisine")
    t = u.say(
        u.session(),
        u.choice(
            [
                f"{c} food is my absolute favourite.",
                f"If I could only eat one cuisine forever it would be {c}.",
                f"Nothing makes me happier than a big {c} dinner.",
            ]
        ),
    )
    u.ask(
        "preference",
        "What is my favorite cuisine?",
        "What is {poss} favorite kind of food?",
        [t],
    )


def pref_hated(u: UserBuilder) -> None:
    food = u.pick(HATED_FOODS, "hated")
    t = u.say(
        u.session(),
        u.choice(
            [
                f"I can't stand {food}, the texture makes me gag.",
                f"Please never suggest recipes with {food}, I hate them.",
                f"{food[0].upper() + food[1:]} ruin any dish for me.",
            ]
        ),
    )
    u.ask("preference", "Which food do I dislike?", "Which food does {who} dislike?", [t])


def pref_hobby(u: UserBuilder) -> None:
    hobby = u.pick(HOBBIES, "hobby")
    t = u.say(
        u.session(),
        u.choice(
            [
                f"{hobby[0].upper() + hobby[1:]} is how I spend most weekends.",
                f"I'm obsessed with {hobby} lately, I do it every weekend.",
            ]
        ),
    )
    u.ask(
        "preference",
        "What do I like to do on weekends?",
        "What does {who} like doing on weekends?",
        [t],
    )
    u.ask(
        "paraphrase",
        "How do I pass my free Saturdays?",
        "What pastime fills {poss} days off?",
        [t],
    )


def pref_colour(u: UserBuilder) -> None:
    colour = u.pick(COLOURS, "colour")
    t = u.say(u.session(), f"My favourite colour is {colour}, half my wardrobe is {colour}.")
    u.ask("preference", "What is my favorite color?", "What is {poss} favorite color?", [t])


def pref_season(u: UserBuilder) -> None:
    season = u.pick(SEASONS, "season")
    t = u.say(u.session(), f"{season.capitalize()} is the best time of year, no contest.")
    u.ask(
        "preference",
        "Which season do I like best?",
        "Which season does {who} prefer?",
        [t],
    )


def pref_team(u: UserBuilder) -> None:
    team = u.pick(TEAMS, "team")
    t = u.say(u.session(), f"I've supported {team} since I was a kid.")
    u.ask("paraphrase", "Which side do I root for?", "Which club does {who} cheer on?", [t])


def pref_seat(u: UserBuilder) -> None:
    seat = u.choice(["aisle", "window"])
    t = u.say(u.session(), f"Always book me an {seat} seat on flights, please.")
    u.ask(
        "preference",
        "Where do I like to sit on a plane?",
        "Where does {who} like to sit when flying?",
        [t],
    )


def pref_answers(u: UserBuilder) -> None:
    style = u.choice(
        [
            "Keep your answers short, I hate long explanations.",
            "I prefer detailed answers with examples, don't hold back.",
            "Bullet points work best for me, no walls of text.",
        ]
    )
    t = u.say(u.session(), style)
    u.ask(
        "preference",
        "How do I want responses formatted?",
        "How does {who} want responses formatted?",
        [t],
    )


def add_updates(u: UserBuilder) -> None:
    """Values that change: only the newest turn answers the question."""
    if u.sessions < 3:
        return
    s1 = u.session(0, u.sessions - 2)
    s2 = u.session(s1 + 1)
    d1, d2 = u.pick(DRINKS, "drink"), u.pick(DRINKS, "drink")
    u.say(s1, f"I drink {d1} every morning, I can't start the day without it.")
    new = u.say(s2, f"I gave up {d1}; these days I start the morning with {d2}.")
    u.ask(
        "knowledge-update",
        "What do I drink in the morning?",
        "What does {who} drink in the morning?",
        [new],
    )
    s1 = u.session(0, u.sessions - 2)
    s2 = u.session(s1 + 1)
    b1, b2 = u.pick(BANDS, "band"), u.pick(BANDS, "band")
    u.say(s1, f"My favourite band right now is {b1}.")
    new = u.say(s2, f"I've totally moved on from {b1}, {b2} is all I play now.")
    u.ask(
        "knowledge-update",
        "Which band is my favourite at the moment?",
        "Which band is {poss} favourite at the moment?",
        [new],
    )
    if u.rng.random() < 0.6:
        s1 = u.session(0, u.sessions - 2)
        s2 = u.session(s1 + 1)
        car1 = f"{u.choice(CAR_COLOURS)} {u.pick(CAR_MAKES, 'car')}"
        car2 = f"{u.choice(CAR_COLOURS)} {u.pick(CAR_MAKES, 'car')}"
        u.say(s1, f"I drive a {car1}, it's old but reliable.")
        new = u.say(s2, f"Sold the old car and got a {car2} instead.")
        u.ask("knowledge-update", "What car do I drive?", "What car does {who} drive?", [new])


def add_events(u: UserBuilder) -> None:
    trips_by_year: dict[int, list[int]] = {}
    for _ in range(u.rng.randint(2, 4)):
        place = u.pick(TRIP_PLACES, "place")
        s = u.session()
        day = u.event_day(s)
        t = u.say(
            s,
            u.choice(
                [
                    f"I flew to {place} on {fmt_date(day)} for {u.choice(TRIP_REASONS)}.",
                    f"Got back from {place}; we left on {fmt_date(day)} for "
                    f"{u.choice(TRIP_REASONS)}.",
                    f"On {fmt_date(day)} I went to {place} for {u.choice(TRIP_REASONS)}.",
                ]
            ),
        )
        trips_by_year.setdefault(day.year, []).append(t)
        u.ask(
            "temporal",
            u.choice([f"When did I travel to {place}?", f"When was my trip to {place}?"]),
            f"When did {{who}} visit {place}?",
            [t],
        )
    for year, keys in sorted(trips_by_year.items()):
        if len(keys) >= 2:
            u.ask(
                "aggregation",
                f"Where did I travel in {year}?",
                f"Which places did {{who}} visit in {year}?",
                keys,
            )
    extra = [ev_race, ev_concert, ev_surgery, ev_exam, ev_birthday]
    u.rng.shuffle(extra)
    for fn in extra[: u.rng.randint(3, 5)]:
        fn(u)


def ev_race(u: UserBuilder) -> None:
    s = u.session()
    day, city = u.event_day(s), u.choice(CITIES)
    mins = u.rng.randint(95, 140)
    t = u.say(
        s,
        f"Ran the {city} half marathon on {fmt_date(day)}, finished in "
        f"{mins // 60}:{mins % 60:02d}.",
    )
    u.ask(
        "temporal",
        "When did I run the half marathon?",
        "When did {who} run a half marathon?",
        [t],
    )
    u.ask(
        "single-fact",
        "What was my half marathon time?",
        "What was {poss} finishing time in the half marathon?",
        [t],
    )


def ev_concert(u: UserBuilder) -> None:
    s = u.session()
    day, band = u.event_day(s), u.pick(BANDS, "band")
    t = u.say(s, f"Saw {band} live on {fmt_date(day)}, best gig of my life.")
    u.ask(
        "temporal",
        f"When did I see {band} in concert?",
        f"When did {{who}} see {band} perform?",
        [t],
    )


def ev_surgery(u: UserBuilder) -> None:
    s = u.session()
    day, what = u.event_day(s), u.choice(SURGERIES)
    t = u.say(s, f"Had my {what} on {fmt_date(day)}, recovery is slow.")
    u.ask("temporal", f"When was my {what}?", f"When did {{who}} have {what}?", [t])
    u.ask(
        "paraphrase",
        "Have I been in hospital for a procedure recently?",
        "Did {who} undergo any medical procedure?",
        [t],
    )


def ev_exam(u: UserBuilder) -> None:
    s = u.session()
    day, exam = u.event_day(s), u.choice(EXAMS)
    t = u.say(s, f"I passed my {exam} on {fmt_date(day)}!")
    u.ask("temporal", f"When did I pass the {exam}?", f"When did {{who}} pass the {exam}?", [t])


def ev_birthday(u: UserBuilder) -> None:
    month, day = u.rng.randint(1, 12), u.rng.randint(1, 28)
    t = u.say(u.session(), f"My birthday is on {day} {MONTHS[month - 1]}, I want a quiet dinner.")
    u.ask("temporal", "When is my birthday?", "When is {poss} birthday?", [t])


def add_misc(u: UserBuilder) -> None:
    # Allergies: one (paraphrase) or two (aggregation).
    allergies = [u.pick(ALLERGENS, "allergen") for _ in range(u.rng.choice([1, 2]))]
    keys = [u.say(u.session(), f"I'm allergic to {allergies[0]}, so be careful with that.")]
    if len(allergies) == 2:
        keys.append(u.say(u.session(), f"Turns out I react badly to {allergies[1]} as well."))
        u.ask("aggregation", "What am I allergic to?", "What is {who} allergic to?", keys)
    else:
        u.ask(
            "paraphrase",
            "Is there anything that gives me a bad reaction?",
            "What must {who} avoid for health reasons?",
            keys,
        )
    # Instruments and languages: two each, told in different sessions.
    i1, i2 = u.pick(INSTRUMENTS, "instrument"), u.pick(INSTRUMENTS, "instrument")
    a = u.say(u.session(), f"I've played the {i1} since I was nine.")
    b = u.say(u.session(), f"Just had my first {i2} lesson, my fingers hurt.")
    u.ask(
        "aggregation",
        "Which instruments do I play?",
        "Which instruments does {who} play?",
        [a, b],
    )
    if u.rng.random() < 0.6:
        l1, l2 = u.pick(LANGUAGES, "lang"), u.pick(LANGUAGES, "lang")
        a = u.say(u.session(), f"I speak {l1} at home with my mum.")
        b = u.say(u.session(), f"Trying to learn {l2} with an app, twenty minutes a day.")
        u.ask(
            "aggregation",
            "Which languages do I speak or study?",
            "Which languages does {who} speak or study?",
            [a, b],
        )
    # Plans, worries and tricks.
    for _ in range(u.rng.randint(1, 2)):
        plan, month = u.pick(PLANS, "plan"), u.pick(MONTHS, "plan_month")
        t = u.say(u.session(), f"I'm planning to {plan} in {month}.")
        u.ask(
            "single-fact",
            f"What am I planning for {month}?",
            f"What are {{poss}} plans for {month}?",
            [t],
        )
        u.ask("temporal", f"When do I plan to {plan}?", f"When will {{who}} {plan}?", [t])
    for _ in range(u.rng.randint(1, 2)):
        worry = u.pick(list(WORRIES), "worry")
        t = u.say(u.session(), f"I've been {u.choice(FEELINGS)} about {worry}.")
        u.ask(
            "single-fact",
            f"How am I feeling about {worry}?",
            f"How does {{who}} feel about {worry}?",
            [t],
        )
        u.ask(
            "paraphrase",
            f"Has anything been bothering me regarding {WORRIES[worry]}?",
            f"Is {{who}} troubled by {WORRIES[worry]}?",
            [t],
        )
    for _ in range(u.rng.randint(2, 3)):
        task, other, trick = u.rng.choice([h for h in HOWTOS if h[0] not in u.used.get("how", [])])
        u.used.setdefault("how", []).append(task)
        t = u.say(u.session(), f"My trick to {task}: {trick}.")
        u.ask("single-fact", f"How do I {task}?", f"How does {{who}} {task}?", [t])
        u.ask("paraphrase", f"What's my method to {other}?", f"How does {{who}} {other}?", [t])


def filler(u: UserBuilder) -> str:
    template = u.choice(FILLER)
    values = {key: u.choice(pool) for key, pool in FILL.items()}
    values.update(
        city=u.choice(CITIES),
        name=u.choice(FIRST_F + FIRST_M),
        place=u.choice(TRIP_PLACES),
        cuisine=u.choice(CUISINES),
        month=u.choice(MONTHS),
        job=u.choice(JOBS),
        allergen=u.choice(ALLERGENS),
        # Never one of the user's own pets' names: "what is my cat called" stays unambiguous.
        petname=u.choice([n for n in PET_NAMES if n not in u.used.get("pet", [])]),
    )
    text = template.format(**values)
    return text[0].upper() + text[1:]


def build_user(index: int, rng: random.Random) -> tuple[list[dict], list[dict]]:
    sessions = rng.randint(5, 10)
    start = date(2023, 1, 1) + timedelta(days=rng.randint(0, 150))
    dates = [start]
    for _ in range(sessions - 1):
        dates.append(dates[-1] + timedelta(days=rng.randint(20, 70)))
    u = UserBuilder(f"eval-u{index:02d}", rng, sessions, dates, rng.choice(["f", "m"]))
    for add in (add_home, add_job, add_pets, add_family, add_work_people):
        add(u)
    add_preferences(u)
    add_updates(u)
    add_events(u)
    add_misc(u)

    # Lay out sessions: facts keep their relative order (an update follows what it
    # replaces), small talk is sprinkled in until each session has 10-30 turns.
    seen = {t.content.casefold() for t in u.turns}
    per_session: list[list[Turn]] = [[] for _ in range(sessions)]
    for turn in u.turns:
        per_session[turn.session].append(turn)
    records = []
    for s, facts in enumerate(per_session):
        target = max(len(facts) + 3, rng.randint(10, 30))
        target = min(target, max(30, len(facts) + 3))
        lines: list[Turn | str] = list(facts)
        while len(lines) < target:
            text = filler(u)
            if text.casefold() in seen:
                continue
            seen.add(text.casefold())
            lines.insert(rng.randint(0, len(lines)), text)
        for t_index, line in enumerate(lines, start=1):
            turn_id = f"{u.user_id}-s{s + 1:02d}-t{t_index:02d}"
            content = line if isinstance(line, str) else line.content
            if isinstance(line, Turn):
                line.id = turn_id
            records.append(
                {
                    "kind": "turn",
                    "user_id": u.user_id,
                    "session": s + 1,
                    "turn": t_index,
                    "id": turn_id,
                    "date": dates[s].isoformat(),
                    "content": content,
                }
            )
    assert len({r["content"].casefold() for r in records}) == len(records), u.user_id
    questions = [
        {
            "kind": "question",
            "user_id": u.user_id,
            "question": text,
            "answer_turn_ids": [u.turns[k].id for k in keys],
            "type": qtype,
        }
        for qtype, text, keys in u.questions
    ]
    return records, questions


def build() -> list[dict]:
    rng = random.Random(SEED)
    turns, questions = [], []
    for index in range(1, USERS + 1):
        t, q = build_user(index, rng)
        turns += t
        questions += q
    for number, question in enumerate(questions, start=1):
        question["id"] = f"q{number:04d}"
    return turns + questions


def encode(records: list[dict]) -> bytes:
    text = "".join(json.dumps(r, ensure_ascii=False, sort_keys=False) + "\n" for r in records)
    buffer = io.BytesIO()
    # mtime=0 and no file name in the header: the bytes depend on the content only.
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0, compresslevel=9) as gz:
        gz.write(text.encode())
    return buffer.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare with the file, write nothing")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    records = build()
    data = encode(records)
    turns = [r for r in records if r["kind"] == "turn"]
    questions = [r for r in records if r["kind"] == "question"]
    types = Counter(q["type"] for q in questions)
    print(
        f"{len({t['user_id'] for t in turns})} users, "
        f"{len({(t['user_id'], t['session']) for t in turns})} sessions, {len(turns)} turns, "
        f"{len(questions)} questions, {len(data):,} bytes compressed"
    )
    for qtype, count in sorted(types.items()):
        print(f"  {qtype:<17} {count:>5}")
    if args.check:
        same = args.out.exists() and args.out.read_bytes() == data
        print("identical" if same else f"{args.out} differs from the generator's output")
        return 0 if same else 1
    args.out.write_bytes(data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
