"""The small world the sample dataset is drawn from: objects, places, verbs, scenarios.

Everything a narration or an official query can mention is here, so that the generator
(`engine.sample`) and its tests agree on one vocabulary. Each narrated action is a
(verb, object, place) triple; the feature signature of an action is built from the same
names, which is what makes the sample data learnable.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Obj:
    name: str
    plural: str
    category: str  # the X of "What X did I Y?"
    use: str = ""  # Ego4D-style phrase for using it, "{o}" is the object


@dataclass(frozen=True)
class Place:
    name: str
    prep: str  # "on" or "in"
    container: bool = False  # can be opened / taken out of


@dataclass(frozen=True)
class Verb:
    key: str
    narr: tuple[str, ...]  # narration phrasings; {o} object, {p} place, {prep}
    past: str  # for questions ("Where was the X before I {past}?")
    objects: str  # "any", "none", or a comma-separated list of categories / names
    place: str  # "any" (a surface or container), "container", "none", or a fixed place name
    weight: float = 1.0


OBJECTS: tuple[Obj, ...] = (
    # kitchen
    Obj("knife", "knives", "utensil", "cuts the bread with the {o}"),
    Obj("spoon", "spoons", "utensil", "scoops sugar with the {o}"),
    Obj("fork", "forks", "utensil"),
    Obj("spatula", "spatulas", "utensil", "flips the egg with the {o}"),
    Obj("ladle", "ladles", "utensil", "scoops soup with the {o}"),
    Obj("onion", "onions", "vegetable"),
    Obj("tomato", "tomatoes", "vegetable"),
    Obj("carrot", "carrots", "vegetable"),
    Obj("potato", "potatoes", "vegetable"),
    Obj("cucumber", "cucumbers", "vegetable"),
    Obj("apple", "apples", "fruit"),
    Obj("banana", "bananas", "fruit"),
    Obj("orange", "oranges", "fruit"),
    Obj("cup", "cups", "dish"),
    Obj("mug", "mugs", "dish"),
    Obj("plate", "plates", "dish"),
    Obj("bowl", "bowls", "dish"),
    Obj("pan", "pans", "cookware"),
    Obj("pot", "pots", "cookware"),
    Obj("kettle", "kettles", "cookware"),
    Obj("jar", "jars", "container"),
    Obj("bottle", "bottles", "container"),
    Obj("container", "containers", "container"),
    Obj("egg", "eggs", "food"),
    Obj("bread", "breads", "food"),
    Obj("cheese", "cheeses", "food"),
    # workshop
    Obj("hammer", "hammers", "tool", "hits the nail with the {o}"),
    Obj("screwdriver", "screwdrivers", "tool", "tightens the screw with the {o}"),
    Obj("drill", "drills", "tool", "drills a hole in the wood with the {o}"),
    Obj("wrench", "wrenches", "tool", "loosens the bolt with the {o}"),
    Obj("pliers", "pliers", "tool", "bends the wire with the {o}"),
    Obj("tape measure", "tape measures", "tool", "measures the plank with the {o}"),
    Obj("paint brush", "paint brushes", "tool", "paints the wall with the {o}"),
    Obj("wood plank", "wood planks", "material"),
    Obj("nail", "nails", "material"),
    Obj("glove", "gloves", "clothing"),
    Obj("box", "boxes", "container"),
    # cleaning and laundry
    Obj("broom", "brooms", "cleaning", "sweeps the floor with the {o}"),
    Obj("mop", "mops", "cleaning", "mops the floor with the {o}"),
    Obj("bucket", "buckets", "cleaning"),
    Obj("cloth", "cloths", "cleaning", "wipes the table with the {o}"),
    Obj("sponge", "sponges", "cleaning", "scrubs the plate with the {o}"),
    Obj("towel", "towels", "cleaning"),
    Obj("shirt", "shirts", "clothing"),
    Obj("sock", "socks", "clothing"),
    Obj("trash bag", "trash bags", "container"),
    # living room, office, personal
    Obj("phone", "phones", "device", "scrolls through the {o}"),
    Obj("laptop", "laptops", "device", "types on the {o}"),
    Obj("remote", "remotes", "device", "presses a button on the {o}"),
    Obj("charger", "chargers", "device"),
    Obj("book", "books", "stationery", "turns a page of the {o}"),
    Obj("pen", "pens", "stationery", "writes on the paper with the {o}"),
    Obj("paper", "papers", "stationery"),
    Obj("notebook", "notebooks", "stationery"),
    Obj("keys", "keys", "personal"),
    Obj("wallet", "wallets", "personal"),
    Obj("bag", "bags", "container"),
    # garden
    Obj("watering can", "watering cans", "garden", "waters the plants with the {o}"),
    Obj("shovel", "shovels", "garden", "digs the soil with the {o}"),
    Obj("flower pot", "flower pots", "garden"),
)

PLACES: tuple[Place, ...] = (
    Place("table", "on"),
    Place("counter", "on"),
    Place("sink", "in"),
    Place("fridge", "in", container=True),
    Place("shelf", "on"),
    Place("drawer", "in", container=True),
    Place("cabinet", "in", container=True),
    Place("floor", "on"),
    Place("stove", "on"),
    Place("chair", "on"),
    Place("bed", "on"),
    Place("sofa", "on"),
    Place("desk", "on"),
    Place("workbench", "on"),
    Place("toolbox", "in", container=True),
    Place("basket", "in", container=True),
    Place("washing machine", "in", container=True),
    Place("chopping board", "on"),
    Place("bin", "in"),
    Place("ground", "on"),
)

# Ego4D narrations use the third person ("#C C picks ..."); questions use the first person past.
VERBS: tuple[Verb, ...] = (
    Verb(
        "pick",
        ("picks up the {o} from the {p}", "picks the {o} from the {p}", "picks up a {o} from the {p}"),
        "picked up the {o}",
        "any",
        "any",
        3.0,
    ),
    Verb(
        "put",
        (
            "puts the {o} {prep} the {p}",
            "places the {o} {prep} the {p}",
            "keeps the {o} {prep} the {p}",
            "drops the {o} {prep} the {p}",
        ),
        "put the {o} {prep} the {p}",
        "any",
        "any",
        3.0,
    ),
    Verb(
        "take",
        ("takes the {o} out of the {p}", "removes the {o} from the {p}"),
        "took the {o} out of the {p}",
        "any",
        "container",
        1.0,
    ),
    Verb("open", ("opens the {p}", "opens the {p} door"), "opened the {p}", "none", "container", 0.8),
    Verb("close", ("closes the {p}", "shuts the {p}"), "closed the {p}", "none", "container", 0.6),
    Verb(
        "open_obj",
        ("opens the {o}", "opens the lid of the {o}"),
        "opened the {o}",
        "jar,bottle,container,box,laptop,bag,trash bag",
        "none",
        0.5,
    ),
    Verb(
        "wash",
        ("washes the {o} in the sink", "rinses the {o} under the tap"),
        "washed the {o}",
        "dish,cookware,utensil,vegetable,fruit",
        "sink",
        1.2,
    ),
    Verb(
        "cut",
        (
            "cuts the {o} on the chopping board",
            "cuts the {o} with the knife",
            "chops the {o}",
            "slices the {o} on the chopping board",
        ),
        "cut the {o}",
        "vegetable,fruit,bread,cheese",
        "chopping board",
        1.4,
    ),
    Verb("peel", ("peels the {o}", "peels the {o} with a knife"), "peeled the {o}", "vegetable,fruit", "none", 0.5),
    Verb("wipe", ("wipes the {p} with the {o}",), "wiped the {p}", "cloth,sponge,towel", "any", 0.6),
    Verb(
        "hold",
        ("holds the {o}", "holds the {o} with his left hand", "holds the {o} in her right hand"),
        "held the {o}",
        "any",
        "none",
        0.8,
    ),
    Verb(
        "carry",
        ("carries the {o} to the {p}", "moves the {o} to the {p}"),
        "carried the {o} to the {p}",
        "any",
        "any",
        0.9,
    ),
    Verb(
        "pour",
        ("pours water into the {o}", "pours water from the {o}"),
        "poured water into the {o}",
        "cup,mug,pot,kettle,bowl,bucket,watering can,bottle",
        "none",
        0.6,
    ),
    Verb(
        "stir",
        ("stirs the food in the {o}", "stirs the soup in the {o}"),
        "stirred the {o}",
        "pot,pan,bowl",
        "stove",
        0.5,
    ),
    Verb(
        "turn_on",
        ("turns on the {o}", "switches on the {o}"),
        "turned on the {o}",
        "kettle,laptop,drill,phone",
        "none",
        0.4,
    ),
    Verb(
        "look",
        ("looks at the {o}", "checks the {o}", "looks at the {o} on the {p}"),
        "looked at the {o}",
        "any",
        "any",
        0.6,
    ),
    Verb(
        "fold",
        ("folds the {o}", "folds the {o} on the {p}"),
        "folded the {o}",
        "clothing,towel,cloth,paper",
        "any",
        0.5,
    ),
    Verb(
        "throw",
        ("throws the {o} into the bin", "drops the {o} in the dustbin"),
        "threw the {o} away",
        "paper,trash bag,banana,egg",
        "bin",
        0.3,
    ),
    Verb("use", ("{use}",), "used the {o}", "use", "none", 1.2),
    Verb(
        "walk",
        ("walks to the {p}", "walks towards the {p}", "moves towards the {p}"),
        "walked to the {p}",
        "none",
        "any",
        0.5,
    ),
)

# Other people's actions (`#O`), about the camera wearer C.
OTHER_ACTORS = ("man X", "woman X", "man Y", "woman Y", "lady X", "boy X", "person X")
OTHER_NARR = (
    "hands the {o} to C",
    "gives C the {o}",
    "takes the {o} from C",
    "picks up C’s {o}",
    "puts the {o} {prep} the {p}",
    "talks to C",
    "looks at C",
)

# A video's scenario decides which objects and places occur in it (like Ego4D's scenarios).
SCENARIOS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "Cooking": (
        (
            "knife",
            "spoon",
            "fork",
            "spatula",
            "ladle",
            "onion",
            "tomato",
            "carrot",
            "potato",
            "cucumber",
            "apple",
            "banana",
            "orange",
            "cup",
            "mug",
            "plate",
            "bowl",
            "pan",
            "pot",
            "kettle",
            "jar",
            "bottle",
            "container",
            "egg",
            "bread",
            "cheese",
            "sponge",
            "towel",
            "phone",
        ),
        ("table", "counter", "sink", "fridge", "shelf", "drawer", "cabinet", "stove", "chopping board", "bin"),
    ),
    "Carpenter": (
        (
            "hammer",
            "screwdriver",
            "drill",
            "wrench",
            "pliers",
            "tape measure",
            "paint brush",
            "wood plank",
            "nail",
            "glove",
            "box",
            "bucket",
            "cloth",
            "phone",
            "pen",
            "paper",
            "bottle",
        ),
        ("workbench", "floor", "shelf", "toolbox", "table", "chair", "drawer", "bin"),
    ),
    "Cleaning / laundry": (
        (
            "broom",
            "mop",
            "bucket",
            "cloth",
            "sponge",
            "towel",
            "shirt",
            "sock",
            "trash bag",
            "plate",
            "cup",
            "bottle",
            "phone",
            "book",
            "remote",
            "glove",
            "box",
        ),
        ("floor", "basket", "washing machine", "bed", "chair", "shelf", "table", "sink", "cabinet", "bin", "sofa"),
    ),
    "Working at desk": (
        (
            "laptop",
            "phone",
            "charger",
            "book",
            "pen",
            "paper",
            "notebook",
            "keys",
            "wallet",
            "bag",
            "mug",
            "cup",
            "remote",
            "bottle",
            "apple",
            "banana",
            "box",
        ),
        ("desk", "table", "sofa", "chair", "shelf", "drawer", "bed", "cabinet", "bin"),
    ),
    "Gardening": (
        (
            "watering can",
            "shovel",
            "flower pot",
            "glove",
            "bucket",
            "trash bag",
            "phone",
            "bottle",
            "cloth",
            "keys",
            "box",
            "paper",
        ),
        ("ground", "table", "chair", "shelf", "floor", "basket", "bin", "cabinet"),
    ),
}

OBJECT_BY_NAME = {o.name: o for o in OBJECTS}
PLACE_BY_NAME = {p.name: p for p in PLACES}
VERB_BY_KEY = {v.key: v for v in VERBS}

# The official NLQ template strings (Ego4D v1), the curly apostrophe included.
T_BEFORE_AFTER = "Objects: Where is object X before / after event Y?"
T_WHERE_IS = "Objects: Where is object X?"
T_PUT_IN = "Objects: What did I put in X?"
T_HOW_MANY = "Objects: How many X’s? (quantity question)"
T_WHAT_X_Y = "Objects: What X did I Y?"
T_SEE = "Objects: In what location did I see object X ?"
T_STATE = "Objects: State of an object"
T_WHERE_MY = "Objects: Where is my object X?"
T_PUT = "Place: Where did I put X?"
T_WHO = "People: Who did I interact with when I did activity X?"
