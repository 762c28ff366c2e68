"""Development and test tooling that speaks SQL (bulk seeding, statement counting, a WordPress seeder):
never used by the running worker."""
