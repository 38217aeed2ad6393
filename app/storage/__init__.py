"""The database: engine and units of work, the tables, migrations, and policy versions."""
