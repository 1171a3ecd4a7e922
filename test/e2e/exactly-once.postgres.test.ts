/** The exactly-once suite (exactly-once.test.ts) against the PostgreSQL store (issue 15). */
process.env.AS2KIT_TEST_STORE = "postgres";
await import("./exactly-once.test.js");
