"""Load benchmark for a running OpenMemory server (stdlib + numpy only).

Phases, all over persistent HTTP connections (one http.client connection per thread):

1. bulk load: N memories spread evenly over M users, sent as POST /memory/add/batch by
   --concurrency threads;
2. single adds: --single-adds POST /memory/add, one at a time, timed one by one;
3. queries: --queries POST /memory/query {query, k: 10, filters: {user_id}} for random users,
   timed one by one, each checked for isolation (every match is one of that user's memories);
4. with --writers: concurrent single adds from that many clients;
5. with --turns: chat turns, one client: an add for a random user, then at once a query
   about that memory for the same user (timed apart; the new memory is the query's target).

Before each timed phase it waits (untimed, reported) until the server has no summary
regeneration queued and no memory awaiting the vector index (GET /health summaries_queued,
vectors_pending): a bulk load queues one regeneration for every user, and on PostgreSQL its
memories enter the HNSW index in the background; without a broker both run inside the
server processes. --no-settle starts at once.

Texts are generated deterministically (--seed) from word lists: varied sentences about users
(preferences, activities, facts, feelings, how-tos), all distinct. Each query is a natural
question written from one of the user's memories (its "target"); recall@10 of that target is
reported as a relevance hint, not as a pass/fail check.

Exit status: 0 when every request succeeded, no isolation violation was seen and queries
returned matches; 1 otherwise; 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import queue
import random
import shlex
import socket
import string
import subprocess
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass, field

import numpy as np

# --- Word lists --------------------------------------------------------------------------

W = {
    "food": (
        "spicy Thai curry|sourdough toast|salmon sushi|miso ramen|dark chocolate|oatmeal with "
        "berries|Greek yogurt|vegetable dumplings|shakshuka|avocado toast|lentil soup|"
        "margherita pizza|chicken tacos|pad see ew|falafel wraps|poke bowls|pancakes with "
        "maple syrup|mushroom risotto|bibimbap|grilled halloumi|pho|butter croissants|"
        "black bean burritos|tomato pasta|kimchi fried rice|paneer tikka|fish and chips|"
        "cold noodle salad|banana bread|egg fried rice"
    ),
    "meal": "breakfast|lunch|dinner|brunch|a late snack|a quick snack|dessert",
    "day": "Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday",
    "music": (
        "jazz|lo-fi beats|classical piano|90s hip hop|synthwave|indie folk|bossa nova|"
        "heavy metal|ambient drone|k-pop|blues|techno|film soundtracks|country|reggae|"
        "baroque cello suites|punk rock|afrobeat|trip hop|opera"
    ),
    "activity_ing": (
        "coding|cooking|running|reading|painting|studying|cleaning the flat|driving|"
        "gardening|working out|writing emails|sketching|knitting|doing the dishes|"
        "commuting|journaling|baking|cycling|folding laundry|debugging"
    ),
    "media": "film|book|podcast|TV series|video game|board game|comic",
    "genre": (
        "science fiction|mystery|historical drama|romantic comedy|horror|fantasy|"
        "documentary|thriller|satire|true crime|space opera|coming-of-age|noir|"
        "cyberpunk|western"
    ),
    "city": (
        "Lisbon|Berlin|Toronto|Osaka|Nairobi|Melbourne|Bogota|Edinburgh|Seoul|Austin|"
        "Lyon|Krakow|Montreal|Cape Town|Hanoi|Dublin|Valencia|Oslo|Denver|Porto|"
        "Istanbul|Mumbai|Chicago|Helsinki|Santiago|Zurich|Taipei|Vienna|Seattle|Marseille"
    ),
    "editor": "VS Code|Neovim|Emacs|PyCharm|Sublime Text|Helix|IntelliJ|Zed|Vim|Xcode",
    "theme": "dark|light|solarized|high-contrast|gruvbox|nord|dracula|sepia",
    "lang": (
        "Python|Rust|Go|TypeScript|Kotlin|Elixir|Haskell|C++|Swift|Ruby|Java|Scala|Zig|"
        "Julia|OCaml|Clojure"
    ),
    "dislike": (
        "crowded trains|loud open offices|cilantro|early meetings|horror films|long phone "
        "calls|strong perfume|small talk|pineapple on pizza|spam emails|tight deadlines|"
        "cold showers|airport queues|decaf coffee|group chats|instant noodles"
    ),
    "situation": (
        "travelling for work|planning weekends|booking restaurants|choosing a hotel|"
        "picking a gym|ordering lunch|visiting family|shopping for groceries|"
        "organising team events|going on holiday"
    ),
    "drink": (
        "green tea|black coffee|oat milk latte|sparkling water|chai|yerba mate|espresso|"
        "matcha|hot chocolate|rooibos|kombucha|orange juice|flat white|peppermint tea"
    ),
    "time_of_day": "morning|afternoon|evening|night|lunchtime",
    "hour": "2pm|3pm|4pm|6pm|8pm|noon|10pm",
    "outdoor": (
        "hiking|kayaking|bouldering|camping|birdwatching|trail running|sailing|"
        "mountain biking|swimming|fishing|skiing|stargazing|snorkelling|horse riding"
    ),
    "place": (
        "the lake|the old quarry|the national park|the coast|the river|the ridge trail|"
        "the botanical garden|the forest reserve|the harbour|the hills north of town|"
        "the waterfall|the island"
    ),
    "companion": (
        "their sister|an old friend|their partner|two colleagues|their dad|the running "
        "club|their roommate|a cousin|their kids|the hiking group|their neighbour|their mum"
    ),
    "period": "week|month|weekend|spring|summer|autumn|winter|year",
    "event": "conference|workshop|meetup|book fair|hackathon|lecture|festival|exhibition",
    "topic": (
        "machine learning|urban gardening|climate policy|ancient Rome|typography|"
        "marine biology|personal finance|jazz history|quantum computing|architecture|"
        "behavioural economics|astronomy|sleep science|open source|bird migration|"
        "fermentation|volcanoes|chess openings|medieval castles|renewable energy"
    ),
    "book_adj": "a long|a short|a funny|a sad|an inspiring|a dense|a beautifully written",
    "distance": "5k|10k|half-marathon|marathon|50k|sprint triathlon",
    "race": "race|charity run|trail race|city run",
    "n": "2|3|4|5|6",
    "minutes": "10|15|20|25|30|40|45|60",
    "relative": (
        "their grandmother|their uncle|their aunt|their brother|their parents|their "
        "godmother|their cousins|their in-laws|their grandfather|their niece"
    ),
    "occasion": (
        "a birthday|the holidays|a wedding|New Year|a graduation|a long weekend|an "
        "anniversary|Thanksgiving|a family reunion|the summer break"
    ),
    "job": (
        "a data engineer|a nurse|a high school teacher|a product designer|an accountant|"
        "an architect|a backend developer|a pharmacist|a journalist|a civil engineer|a chef|"
        "a research scientist|a UX researcher|a lawyer|a physiotherapist|a translator|"
        "an electrician|a marketing manager|a veterinarian|a site reliability engineer"
    ),
    "company": (
        "small startup|hospital|public library|logistics company|bank|design studio|"
        "university lab|non-profit|game studio|solar energy firm|bakery|law firm|"
        "newspaper|city council|bike shop"
    ),
    "pet_adj": "lazy|playful|grumpy|tiny|old|shy|energetic|fluffy|clever|noisy",
    "pet": "cat|dog|rabbit|parrot|tortoise|hamster|beagle|labrador|guinea pig|ferret",
    "pet_name": (
        "Biscuit|Luna|Mochi|Pepper|Olive|Ziggy|Nacho|Maple|Pixel|Juniper|Toast|Waffles|"
        "Clementine|Pretzel|Basil|Sushi|Noodle|Kiwi"
    ),
    "pet_toy": (
        "tennis balls|cardboard boxes|squeaky toys|sunny windowsills|long walks|"
        "feather wands|carrots|belly rubs|the garden hose|chasing leaves"
    ),
    "transport": "bike|tram|bus|train|car|scooter|ferry|foot|subway",
    "workplace": "office|studio|campus|hospital|lab|warehouse|co-working space|shop",
    "language": (
        "Spanish|French|German|Portuguese|Japanese|Mandarin|Arabic|Italian|Korean|Hindi|"
        "Polish|Dutch|Swahili|Turkish|Greek"
    ),
    "app_name": (
        "a phone app|evening classes|weekly tutoring|podcasts|a language exchange|flash "
        "cards|an online course|graded readers"
    ),
    "month": (
        "January|February|March|April|May|June|July|August|September|October|November|December"
    ),
    "celebration": (
        "a picnic|a karaoke night|a long hike|a dinner party|a trip abroad|a quiet day "
        "at home|a board game marathon|a beach day|a concert|a bake-off"
    ),
    "allergen": ("peanuts|shellfish|gluten|lactose|sesame|tree nuts|eggs|soy|strawberries|kiwi"),
    "product": (
        "cereal bars|sauces|takeaway menus|chocolate|bread|protein shakes|ice cream|"
        "ready meals|snacks|salad dressings"
    ),
    "emotion": (
        "anxious|proud|relieved|frustrated|excited|overwhelmed|calm|nostalgic|grateful|"
        "nervous|hopeful|disappointed|energised|lonely|content"
    ),
    "event2": (
        "job interview|team retrospective|first marathon|dentist appointment|thesis "
        "defence|product launch|family dinner|performance review|piano recital|"
        "driving test|house viewing|first day at the new job"
    ),
    "aspiration": (
        "take more time off|learn to say no|call their parents more often|sleep earlier|"
        "start therapy|travel more|spend less time online|ask for a raise|"
        "find a new hobby|write a journal"
    ),
    "trigger": (
        "meetings run late|the inbox piles up|plans change last minute|it rains for days|"
        "flights get delayed|the code review drags on|the neighbours are loud|"
        "deadlines overlap|people interrupt them|the internet drops"
    ),
    "coping": (
        "a short walk|breathing exercises|a cup of tea|loud music|a hot shower|"
        "talking to a friend|yoga|writing lists|a nap|playing guitar"
    ),
    "sensory": (
        "sore legs|salty air|cold wind on the face|quiet streets|warm sunlight|"
        "the smell of rain|tired arms|clear skies"
    ),
    "season": "spring|summer|autumn|winter|the rainy season",
    "project": (
        "billing|search|checkout|notifications|analytics|auth|inventory|reporting|"
        "scheduler|payments|onboarding|recommendations"
    ),
    "tool": "pytest|cargo|jest|go test|tox|nox|bazel|make|gradle|mix",
    "platform": "GitHub|GitLab|Bitbucket|Gitea|Codeberg",
    "task": (
        "weekly meal prep|filing taxes|cleaning the bike|backing up photos|onboarding "
        "new hires|planning sprints|repotting plants|packing for trips|paying bills|"
        "reviewing pull requests"
    ),
    "step1": (
        "makes a checklist|clears the desk|checks the calendar|puts on music|"
        "downloads the statements|gathers the supplies|writes down the goals"
    ),
    "step2": (
        "sorts everything by priority|sets a timer|works through the list|groups "
        "similar items|asks for feedback|compares with last month"
    ),
    "step3": (
        "reviews the result|archives the notes|sends a summary|takes a break|labels the "
        "boxes|updates the spreadsheet|celebrates with a snack"
    ),
    "tool2": (
        "pre-commit hooks|a linter|Docker Compose|a virtual environment|CI pipelines|"
        "a formatter|type checking|dependabot"
    ),
    "setting": (
        "strict mode|a line length of 100|caching enabled|verbose logging|parallel "
        "jobs|a pinned toolchain|minimal dependencies"
    ),
    "habit": (
        "meditates|stretches|writes in a journal|reads the news|practises guitar|"
        "does push-ups|plans the day|waters the plants|studies vocabulary|walks the dog"
    ),
    "activity2": (
        "checking email|starting work|making breakfast|going to bed|leaving the house|"
        "the first meeting|taking the kids to school"
    ),
    "dish": (
        "chickpea stew|black dal|bean chilli|split pea soup|red lentil curry|"
        "white bean cassoulet|feijoada|hummus|minestrone|ful medames"
    ),
    "ingredient": "chickpeas|black lentils|kidney beans|split peas|white beans|fava beans",
    "spice": (
        "smoked paprika|cumin|garam masala|bay leaves|chilli flakes|turmeric|"
        "fresh ginger|star anise|coriander seeds|sumac"
    ),
    "recently": ("|| lately| these days| since last spring| this year| for years now| again"),
    "tail": (
        "||||| They mentioned it twice this week.| They brought it up during onboarding.|"
        " This came up in a chat last month.| They said it matters a lot to them.|"
        " They asked the assistant to remember this.| They repeated it recently."
    ),
}
WORDS: dict[str, list[str]] = {k: v.split("|") for k, v in W.items()}

# (category, tag, memory template, question template). The question is written from the
# same slot values, so the memory it came from is the expected best match.
TEMPLATES: list[tuple[str, str, str, str]] = [
    (
        "preferences",
        "food",
        "User prefers {food} for {meal}, especially on {day}s{recently}.",
        "What does the user like to eat for {meal} on {day}s?",
    ),
    (
        "preferences",
        "music",
        "Likes listening to {music} while {activity_ing}{recently}.",
        "What music does the user enjoy while {activity_ing}?",
    ),
    (
        "preferences",
        "media",
        "User's favourite {media} genre is {genre}, ideally stories set in {city}.",
        "Which {media} genre does the user enjoy most?",
    ),
    (
        "preferences",
        "tools",
        "Prefers {editor} with a {theme} theme when writing {lang} code{recently}.",
        "Which editor does the user use for {lang} code?",
    ),
    (
        "preferences",
        "dislikes",
        "User dislikes {dislike}{recently} and plans around that when {situation}.",
        "What does the user avoid when {situation}?",
    ),
    (
        "preferences",
        "drinks",
        "Drinks {drink} every {time_of_day}{recently}, but never anything caffeinated "
        "after {hour}.",
        "What does the user drink in the {time_of_day}?",
    ),
    (
        "activities",
        "outdoors",
        "Went {outdoor} near {place} with {companion} last {period}.",
        "When did the user go {outdoor} with {companion}?",
    ),
    (
        "activities",
        "events",
        "User attended a {event} about {topic} in {city} on {day}.",
        "Which {event} did the user attend in {city}?",
    ),
    (
        "activities",
        "reading",
        "Finished {book_adj} book about {topic} during a trip to {city}.",
        "What book did the user read on the trip to {city}?",
    ),
    (
        "activities",
        "fitness",
        "Started training for a {distance} {race} in {city} and runs {n} times a week.",
        "What {race} is the user training for in {city}?",
    ),
    (
        "activities",
        "family",
        "Visited {relative} in {city} for {occasion} and cooked {food} together.",
        "Who did the user visit in {city} for {occasion}?",
    ),
    (
        "facts",
        "work",
        "User works as {job} at a {company} in {city}.",
        "Where does the user work as {job}?",
    ),
    (
        "facts",
        "pets",
        "Has a {pet_adj} {pet} named {pet_name} who loves {pet_toy}.",
        "What is the name of the user's {pet}?",
    ),
    (
        "facts",
        "commute",
        "User lives in {city} and goes to the {workplace} by {transport}{recently}.",
        "How does the user get to the {workplace} in {city}?",
    ),
    (
        "facts",
        "languages",
        "Speaks {language} fluently and is learning {language2} with {app_name}.",
        "Which language is the user learning with {app_name}?",
    ),
    (
        "facts",
        "birthday",
        "User was born in {month} and celebrates with {celebration} in {city} every year.",
        "How does the user celebrate their birthday in {month}?",
    ),
    (
        "facts",
        "health",
        "Is allergic to {allergen}, so always checks the labels on {product} when {situation}.",
        "What allergy makes the user check the labels on {product}?",
    ),
    (
        "feelings",
        "mood",
        "Felt {emotion} after the {event2} on {day} and wants to {aspiration}.",
        "How did the user feel after the {event2}?",
    ),
    (
        "feelings",
        "stress",
        "User gets {emotion} when {trigger}; {coping} helps them calm down.",
        "What helps the user calm down when {trigger}?",
    ),
    (
        "feelings",
        "life",
        "Feels {emotion} about moving to {city} next {period}{recently}.",
        "How does the user feel about moving to {city}?",
    ),
    (
        "feelings",
        "joy",
        "Loves the {sensory} after {activity_ing} in {season}{recently}.",
        "What does the user love about {activity_ing} in {season}?",
    ),
    (
        "how-to",
        "deploy",
        "To deploy the {project} service the user first runs the {tool} suite, then tags "
        "a release on {platform} every {day}.",
        "How does the user deploy the {project} service?",
    ),
    (
        "how-to",
        "routine",
        "User's routine for {task}: {step1}, then {step2}, and finally {step3}.",
        "What steps does the user follow for {task}?",
    ),
    (
        "how-to",
        "setup",
        "Usually configures {tool2} with {setting} in {editor} before starting a new "
        "{lang} project.",
        "How does the user set up a new {lang} project?",
    ),
    (
        "how-to",
        "habits",
        "Every {time_of_day} the user {habit} for {minutes} minutes before {activity2}.",
        "What does the user do every {time_of_day} before {activity2}?",
    ),
    (
        "how-to",
        "cooking",
        "How to make the user's {dish}: soak the {ingredient} overnight, add {spice}, "
        "then simmer for {minutes} minutes.",
        "How does the user cook {dish}?",
    ),
]


def _slots(template: str) -> list[str]:
    names = [name for _, name, _, _ in string.Formatter().parse(template) if name]
    return list(dict.fromkeys(names))


_TEMPLATE_SLOTS = [_slots(mem + " " + q) for _, _, mem, q in TEMPLATES]


@dataclass
class Item:
    user: str
    content: str
    tags: list[str]
    template: int
    values: dict[str, str]
    id: str | None = None


class TextGenerator:
    """Deterministic, globally distinct memory texts and questions about them."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.seen: set[str] = set()

    def memory(self, user: str) -> Item:
        for _ in range(1000):
            index = self.rng.randrange(len(TEMPLATES))
            category, tag, mem, _ = TEMPLATES[index]
            values = {}
            for slot in _TEMPLATE_SLOTS[index]:
                words = WORDS["language" if slot == "language2" else slot]
                values[slot] = self.rng.choice(words)
            if "language2" in values and values["language2"] == values["language"]:
                continue
            content = mem.format(**values) + self.rng.choice(WORDS["tail"])
            content = content[0].upper() + content[1:]
            if content in self.seen:
                continue
            self.seen.add(content)
            return Item(user, content, [category, tag], index, values)
        raise RuntimeError("word lists exhausted: cannot make another distinct text")

    @staticmethod
    def question(item: Item) -> str:
        return TEMPLATES[item.template][3].format(**item.values)


# --- HTTP --------------------------------------------------------------------------------


class RequestFailed(Exception):
    pass


class Client:
    """One persistent HTTP/1.1 connection; reconnects (once) only when the server closed
    an idle keep-alive connection before reading the request."""

    def __init__(self, base_url: str, api_key: str, timeout: float) -> None:
        parts = urllib.parse.urlsplit(base_url)
        if parts.scheme not in ("http", "https"):
            raise SystemExit(f"--base-url must be http(s)://host:port, got {base_url!r}")
        self.https = parts.scheme == "https"
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or (443 if self.https else 80)
        self.prefix = parts.path.rstrip("/")
        self.timeout = timeout
        self.headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if api_key:
            self.headers["Authorization"] = f"Bearer {api_key}"
        self.conn: http.client.HTTPConnection | None = None
        self.reconnects = 0

    def _connect(self) -> http.client.HTTPConnection:
        cls = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
        conn = cls(self.host, self.port, timeout=self.timeout)
        conn.connect()
        # Small request bodies: send them at once instead of waiting for an ACK (Nagle).
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def request(self, method: str, path: str, body: object | None = None) -> tuple[int, bytes]:
        payload = None if body is None else json.dumps(body).encode()
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = self._connect()
            try:
                self.conn.request(method, self.prefix + path, body=payload, headers=self.headers)
                response = self.conn.getresponse()
                data = response.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                # Idle keep-alive connection closed by the server: the request never reached
                # the application, so sending it again on a new connection is safe.
                self.close()
                if attempt == 2:
                    raise
                self.reconnects += 1
                continue
            if response.getheader("Connection", "").lower() == "close":
                self.close()
            return response.status, data
        raise AssertionError("unreachable")

    def timed(self, method: str, path: str, body: object) -> tuple[float, int, bytes]:
        """(milliseconds, status, body); a fresh connection, if one is needed, is opened
        before the clock starts."""
        if self.conn is None:
            self.conn = self._connect()
        start = time.perf_counter()
        status, data = self.request(method, path, body)
        return (time.perf_counter() - start) * 1000.0, status, data


# --- Phases ------------------------------------------------------------------------------


@dataclass
class Stats:
    failures: int = 0
    failure_samples: list[str] = field(default_factory=list)
    deduplicated: int = 0
    started: float = field(default_factory=time.time)

    def fail(self, message: str) -> None:
        self.failures += 1
        if len(self.failure_samples) < 10:
            at = time.strftime("%H:%M:%S", time.localtime())
            self.failure_samples.append(f"[{at}, +{time.time() - self.started:.1f}s] {message}")


def wait_for_background(base_url: str, api_key: str, timeout: float = 600.0) -> float:
    """Waits until the server reports no background backlog (GET /health's summaries_queued
    and vectors_pending), as a deployment is between bursts: the timed phases then measure
    requests, not requests racing an import's backlog. Returns the seconds waited."""
    client = Client(base_url, api_key, 10.0)
    started = time.perf_counter()
    try:
        while time.perf_counter() - started < timeout:
            status, data = client.request("GET", "/health")
            health = json.loads(data) if status == 200 else {}
            if status == 200 and not (
                health.get("summaries_queued") or health.get("vectors_pending")
            ):
                break
            time.sleep(0.2)
    finally:
        client.close()
    return time.perf_counter() - started


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def bulk_load(args, batches: list[list[Item]], stats: Stats) -> float:
    """Sends the batches from --concurrency threads; returns elapsed seconds."""
    work: queue.Queue[list[Item] | None] = queue.Queue()
    for batch in batches:
        work.put(batch)
    lock = threading.Lock()
    done = [0, 0]  # batches, items
    total_items = sum(len(b) for b in batches)
    next_report = [0.1]

    def worker() -> None:
        client = Client(args.base_url, args.api_key, args.timeout)
        try:
            while True:
                try:
                    batch = work.get_nowait()
                except queue.Empty:
                    return
                body = {
                    "items": [
                        {"content": i.content, "user_id": i.user, "tags": i.tags} for i in batch
                    ]
                }
                try:
                    status, data = client.request("POST", "/memory/add/batch", body)
                except (OSError, http.client.HTTPException) as exc:
                    with lock:
                        stats.fail(f"batch: {type(exc).__name__}: {exc}")
                    client.close()
                    continue
                with lock:
                    if status != 201:
                        stats.fail(f"batch: HTTP {status}: {data[:300]!r}")
                        continue
                    result = json.loads(data)
                    ids = result.get("ids", [])
                    if len(ids) != len(batch):
                        stats.fail(f"batch: {len(ids)} ids for {len(batch)} items")
                        continue
                    for item, mid, created in zip(batch, ids, result["items"], strict=True):
                        item.id = mid
                        if created.get("deduplicated"):
                            stats.deduplicated += 1
                    done[0] += 1
                    done[1] += len(batch)
                    if done[1] >= next_report[0] * total_items:
                        elapsed = time.perf_counter() - start
                        log(
                            f"  bulk: {done[1]:>7}/{total_items} memories "
                            f"({done[1] / elapsed:,.0f}/s)"
                        )
                        next_report[0] += 0.1
        finally:
            client.close()

    start = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(args.concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - start


def timed_call(
    client: Client, stats: Stats, label: str, path: str, body: object, ok: tuple[int, ...]
) -> tuple[float, int, bytes] | None:
    """One timed POST; a transport error or a status outside `ok` is counted as a failure
    (and gives None), after which the client reconnects on its next request."""
    try:
        ms, status, data = client.timed("POST", path, body)
    except (OSError, http.client.HTTPException) as exc:
        stats.fail(f"{label}: {type(exc).__name__}: {exc}")
        client.close()
        return None
    if status not in ok:
        stats.fail(f"{label}: HTTP {status}: {data[:300]!r}")
        return None
    return ms, status, data


def single_adds(args, items: list[Item], stats: Stats) -> list[float]:
    client = Client(args.base_url, args.api_key, args.timeout)
    latencies = []
    try:
        for item in items:
            body = {"content": item.content, "user_id": item.user, "tags": item.tags}
            answer = timed_call(client, stats, "add", "/memory/add", body, ok=(200, 201))
            if answer is None:
                continue
            ms, _, data = answer
            result = json.loads(data)
            item.id = result["id"]
            # 200 either way (as upstream answers): only the flag tells a duplicate.
            if result.get("deduplicated"):
                stats.deduplicated += 1
            latencies.append(ms)
    finally:
        client.close()
    return latencies


def concurrent_adds(args, items: list[Item], stats: Stats) -> tuple[list[float], float]:
    """Single adds from --writers threads at once (app servers writing in parallel), each
    on its own connection, sharing one queue of items; returns latencies and seconds."""
    work: queue.Queue[Item] = queue.Queue()
    for item in items:
        work.put(item)
    lock = threading.Lock()
    latencies: list[float] = []

    def writer() -> None:
        client = Client(args.base_url, args.api_key, args.timeout)
        try:
            while True:
                try:
                    item = work.get_nowait()
                except queue.Empty:
                    return
                body = {"content": item.content, "user_id": item.user, "tags": item.tags}
                answer = timed_call(client, stats, "writer add", "/memory/add", body, ok=(200,))
                if answer is None:
                    continue
                ms, _, data = answer
                with lock:
                    item.id = json.loads(data)["id"]
                    latencies.append(ms)
        finally:
            client.close()

    start = time.perf_counter()
    threads = [threading.Thread(target=writer) for _ in range(args.writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, time.perf_counter() - start


@dataclass
class QueryResult:
    latencies: list[float] = field(default_factory=list)
    match_counts: list[int] = field(default_factory=list)
    violations: int = 0
    violation_samples: list[str] = field(default_factory=list)
    target_hits: int = 0
    target_top1: int = 0


def ask(
    client: Client,
    args,
    stats: Stats,
    out: QueryResult,
    target: Item,
    question: str,
    ids_by_user: dict[str, set[str]],
) -> None:
    """One timed query for `target`'s user, checked for isolation and for `target`."""
    user = target.user
    body = {"query": question, "k": args.k, "filters": {"user_id": user}}
    answer = timed_call(client, stats, "query", "/memory/query", body, ok=(200,))
    if answer is None:
        return
    ms, _, data = answer
    out.latencies.append(ms)
    matches = json.loads(data).get("matches", [])
    out.match_counts.append(len(matches))
    own = ids_by_user.get(user, set())
    for rank, match in enumerate(matches):
        if match.get("user_id") != user or match.get("id") not in own:
            out.violations += 1
            if len(out.violation_samples) < 5:
                out.violation_samples.append(
                    f"query for {user} returned {match.get('id')} of user {match.get('user_id')!r}"
                )
        if match.get("id") == target.id:
            out.target_hits += 1
            out.target_top1 += rank == 0


def run_queries(
    args, plan: list[tuple[Item, str]], ids_by_user: dict[str, set[str]], stats: Stats
) -> QueryResult:
    client = Client(args.base_url, args.api_key, args.timeout)
    out = QueryResult()
    try:
        for target, question in plan:
            ask(client, args, stats, out, target, question, ids_by_user)
    finally:
        client.close()
    return out


def chat_turns(
    args, turns: list[Item], ids_by_user: dict[str, set[str]], stats: Stats
) -> tuple[list[float], QueryResult]:
    """A chat's usual turn, one client: add what was learnt about a user, then ask a
    question about it for the same user at once. Returns the adds' latencies and the
    queries' result (their target: the memory just added)."""
    client = Client(args.base_url, args.api_key, args.timeout)
    adds: list[float] = []
    out = QueryResult()
    try:
        for item in turns:
            body = {"content": item.content, "user_id": item.user, "tags": item.tags}
            answer = timed_call(client, stats, "turn add", "/memory/add", body, ok=(200, 201))
            if answer is None:
                continue
            ms, _, data = answer
            adds.append(ms)
            item.id = json.loads(data)["id"]
            ids_by_user.setdefault(item.user, set()).add(item.id)
            ask(client, args, stats, out, item, TextGenerator.question(item), ids_by_user)
    finally:
        client.close()
    return adds, out


# --- Driver ------------------------------------------------------------------------------


def percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p95": None, "p99": None, "mean": None, "max": None}
    arr = np.asarray(values)
    p50, p95, p99 = np.percentile(arr, [50, 95, 99])
    return {
        "p50": round(float(p50), 2),
        "p95": round(float(p95), 2),
        "p99": round(float(p99), 2),
        "mean": round(float(arr.mean()), 2),
        "max": round(float(arr.max()), 2),
    }


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be >= 1")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Load N memories over M users into a running OpenMemory server through "
        "its HTTP API, then time single adds and user-scoped queries.",
    )
    parser.add_argument("--base-url", default="http://127.0.0.1:8080")
    parser.add_argument(
        "--api-key",
        default=os.environ.get("OM_API_KEY", "").split(",")[0].strip(),
        help="sent as 'Authorization: Bearer <key>' (default: first key of $OM_API_KEY)",
    )
    parser.add_argument("--memories", type=non_negative_int, default=100_000, help="N")
    parser.add_argument("--users", type=positive_int, default=1000, help="M")
    parser.add_argument("--batch-size", type=positive_int, default=500)
    parser.add_argument("--concurrency", type=positive_int, default=4, help="bulk-load threads")
    parser.add_argument("--single-adds", type=non_negative_int, default=1000)
    parser.add_argument("--queries", type=non_negative_int, default=1000)
    parser.add_argument("--k", type=positive_int, default=10, help="k of every query")
    parser.add_argument(
        "--writers",
        type=non_negative_int,
        default=0,
        help="then this many clients adding at once (0: skip that phase)",
    )
    parser.add_argument(
        "--writer-adds", type=positive_int, default=2000, help="single adds the writers send"
    )
    parser.add_argument(
        "--turns",
        type=non_negative_int,
        default=0,
        help="then this many chat turns: an add, then a query about it for the same user",
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--user-prefix", default="user", help="user ids are <prefix>-00001 ... (default: user)"
    )
    parser.add_argument("--timeout", type=float, default=300.0, help="per-request seconds")
    parser.add_argument(
        "--after-bulk",
        metavar="CMD",
        default="",
        help="shell command run between the bulk load and the timed phases, e.g. an ANALYZE "
        "(bench/run.sh uses it); its time is reported separately and it must succeed",
    )
    parser.add_argument(
        "--no-settle",
        dest="settle",
        action="store_false",
        help="start each timed phase at once, not after the background work the phase before "
        "left is done (GET /health summaries_queued, vectors_pending)",
    )
    parser.add_argument("--json", action="store_true", help="print the results as one JSON line")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rng = random.Random(args.seed)
    gen = TextGenerator(rng)
    width = max(5, len(str(args.users)))
    users = [f"{args.user_prefix}-{i:0{width}d}" for i in range(1, args.users + 1)]

    # Health first: a clear message rather than a thousand connection errors.
    probe = Client(args.base_url, args.api_key, 10.0)
    try:
        status, data = probe.request("GET", "/health")
        health = json.loads(data) if status == 200 else {}
    except (OSError, http.client.HTTPException) as exc:
        log(f"server not reachable at {args.base_url}: {exc}")
        return 1
    finally:
        probe.close()
    if status != 200:
        log(f"GET /health answered HTTP {status}")
        return 1

    # Even spread (N/M each, +-1), in a shuffled order so every batch mixes users.
    owners = [users[i % args.users] for i in range(args.memories)]
    rng.shuffle(owners)
    bulk_items = [gen.memory(user) for user in owners]
    batches = [
        bulk_items[i : i + args.batch_size] for i in range(0, len(bulk_items), args.batch_size)
    ]
    single_users = [users[i % args.users] for i in range(args.single_adds)]
    rng.shuffle(single_users)
    single_items = [gen.memory(user) for user in single_users]

    stats = Stats()
    log(
        f"bulk load: {args.memories} memories, {args.users} users, batches of {args.batch_size}, "
        f"{args.concurrency} threads -> {args.base_url} ({health.get('database')}, "
        f"{health.get('embeddings')})"
    )
    bulk_seconds = bulk_load(args, batches, stats)
    bulk_ok = sum(1 for item in bulk_items if item.id is not None)
    bulk_rate = bulk_ok / bulk_seconds if bulk_seconds > 0 else 0.0
    log(f"  bulk: {bulk_ok} memories in {bulk_seconds:.1f}s = {bulk_rate:,.0f} memories/s")

    hook_seconds = None
    if args.after_bulk:
        log(f"after bulk: {args.after_bulk}")
        hook_start = time.perf_counter()
        hook = subprocess.run(args.after_bulk, shell=True, check=False)
        hook_seconds = round(time.perf_counter() - hook_start, 2)
        if hook.returncode != 0:
            stats.fail(
                f"--after-bulk exited with {hook.returncode}: {shlex.quote(args.after_bulk)}"
            )

    settled: dict[str, float] = {}

    def settle(phase: str) -> None:
        if args.settle:
            settled[phase] = round(wait_for_background(args.base_url, args.api_key), 1)
            log(f"  background work done {settled[phase]}s later (not timed)")

    settle("after_bulk")
    log(f"single adds: {args.single_adds}, one at a time")
    single_start = time.perf_counter()
    add_latencies = single_adds(args, single_items, stats)
    single_seconds = time.perf_counter() - single_start

    ids_by_user: dict[str, set[str]] = {}
    by_user: dict[str, list[Item]] = {}
    for item in bulk_items + single_items:
        if item.id is not None:
            ids_by_user.setdefault(item.user, set()).add(item.id)
            by_user.setdefault(item.user, []).append(item)

    plan: list[tuple[Item, str]] = []
    candidates = [user for user in users if by_user.get(user)]
    for _ in range(args.queries if candidates else 0):
        target = rng.choice(by_user[rng.choice(candidates)])
        plan.append((target, gen.question(target)))
    settle("after_single_adds")
    log(f"queries: {len(plan)}, k={args.k}, one at a time, each for one random user")
    query_start = time.perf_counter()
    q = run_queries(args, plan, ids_by_user, stats)
    query_seconds = time.perf_counter() - query_start
    if args.queries and not candidates:
        stats.fail("queries: no memory was stored, nothing to query")

    writer_latencies: list[float] = []
    writer_seconds = 0.0
    if args.writers:
        # Made after the query plan, so that the phases before are the same with or without.
        writer_items = [gen.memory(rng.choice(users)) for _ in range(args.writer_adds)]
        settle("after_queries")
        log(f"concurrent adds: {len(writer_items)} from {args.writers} clients at once")
        writer_latencies, writer_seconds = concurrent_adds(args, writer_items, stats)
        for item in writer_items:
            if item.id is not None:  # later phases may find them: they are the user's own
                ids_by_user.setdefault(item.user, set()).add(item.id)

    turn_adds: list[float] = []
    t = QueryResult()
    if args.turns:
        # Made after the writers' items, so that every phase before is the same without it.
        turn_items = [gen.memory(rng.choice(users)) for _ in range(args.turns)]
        settle("after_writers")
        log(f"chat turns: {len(turn_items)}, each an add then a query for the same user")
        turn_adds, t = chat_turns(args, turn_items, ids_by_user, stats)

    mean_matches = float(np.mean(q.match_counts)) if q.match_counts else 0.0
    answered = len(q.match_counts)
    results = {
        "base_url": args.base_url,
        "database": health.get("database"),
        "embeddings": health.get("embeddings"),
        "memories": args.memories,
        "users": args.users,
        "batch_size": args.batch_size,
        "concurrency": args.concurrency,
        "seed": args.seed,
        "bulk": {
            "stored": bulk_ok,
            "seconds": round(bulk_seconds, 2),
            "memories_per_s": round(bulk_rate, 1),
        },
        "after_bulk": args.after_bulk or None,
        "after_bulk_seconds": hook_seconds,
        "background_seconds": settled,
        "single_add_ms": {
            "count": len(add_latencies),
            **percentiles(add_latencies),
            "per_s": round(len(add_latencies) / single_seconds, 1) if single_seconds else None,
        },
        "query_ms": {
            "count": answered,
            **percentiles(q.latencies),
            "per_s": round(answered / query_seconds, 1) if query_seconds else None,
        },
        "concurrent_add_ms": {
            "writers": args.writers,
            "count": len(writer_latencies),
            **percentiles(writer_latencies),
            "per_s": round(len(writer_latencies) / writer_seconds, 1) if writer_seconds else None,
        },
        "turns": {
            "count": len(t.latencies),
            "add_ms": percentiles(turn_adds),
            "query_ms": percentiles(t.latencies),
            "new_memory_found": t.target_hits,
            "new_memory_top1": t.target_top1,
        },
        "isolation_violations": q.violations + t.violations,
        "mean_matches": round(mean_matches, 2),
        "target_recall_at_k": round(q.target_hits / answered, 3) if answered else None,
        "target_top1": round(q.target_top1 / answered, 3) if answered else None,
        "deduplicated": stats.deduplicated,
        "failures": stats.failures,
    }
    ok = (
        stats.failures == 0
        and results["isolation_violations"] == 0
        and (args.queries == 0 or mean_matches > 0)
    )
    results["ok"] = ok

    if args.json:
        print(json.dumps(results), flush=True)
    else:
        a, qm = results["single_add_ms"], results["query_ms"]
        if args.after_bulk:
            print(f"after bulk          {args.after_bulk!r} took {hook_seconds}s (not timed)")
        if settled:
            waits = ", ".join(f"{phase} {seconds}s" for phase, seconds in settled.items())
            print(f"background settled  {waits} (not timed)")
        print(f"database            {results['database']} ({results['embeddings']})")
        print(
            f"bulk add            {bulk_ok} memories / {args.users} users in "
            f"{bulk_seconds:.1f}s = {bulk_rate:,.0f} memories/s "
            f"(batch {args.batch_size}, {args.concurrency} threads)"
        )
        print(
            f"single add (ms)     p50 {a['p50']}  p95 {a['p95']}  p99 {a['p99']}  "
            f"mean {a['mean']}  max {a['max']}  (n={a['count']})"
        )
        print(
            f"query k={args.k} (ms)    p50 {qm['p50']}  p95 {qm['p95']}  p99 {qm['p99']}  "
            f"mean {qm['mean']}  max {qm['max']}  (n={qm['count']})"
        )
        if args.writers:
            w = results["concurrent_add_ms"]
            print(
                f"{args.writers} writers (ms)      {w['per_s']} adds/s  p50 {w['p50']}  "
                f"p95 {w['p95']}  p99 {w['p99']}  max {w['max']}  (n={w['count']})"
            )
        if args.turns:
            tq = results["turns"]["query_ms"]
            print(
                f"turn query (ms)     p50 {tq['p50']}  p95 {tq['p95']}  p99 {tq['p99']}  "
                f"max {tq['max']}  (n={len(t.latencies)}; the new memory found "
                f"{t.target_hits}, first {t.target_top1})"
            )
        print(f"isolation           {results['isolation_violations']} violations (must be 0)")
        print(f"mean matches        {mean_matches:.2f} per query (must be > 0)")
        print(
            f"target recall@{args.k}    {results['target_recall_at_k']} "
            f"(top-1 {results['target_top1']}; relevance hint, not checked)"
        )
        print(f"deduplicated        {stats.deduplicated} (expected 0: texts are distinct)")
        print(f"failed requests     {stats.failures}")
        print(f"result              {'OK' if ok else 'FAILED'}")
    for sample in stats.failure_samples + q.violation_samples + t.violation_samples:
        log(f"  ! {sample}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
