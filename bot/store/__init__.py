"""SQLModel tables and the queries the core needs; the schema changes only through migrations/."""
