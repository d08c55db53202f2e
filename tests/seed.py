"""The seed page's example user (docs: user-management), shared by tests that need it."""

SEED_FACTS = [
    ("User prefers dark mode in applications", ["preferences", "ui"]),
    ("User completed Python course", ["learning", "achievement"]),
    ("Completed React tutorial", ["learning"]),
    ("Prefers TypeScript over JavaScript", ["preferences"]),
]
