/** The CEM suite (cem.test.ts) against the PostgreSQL store (issue 17: both backends). */
process.env.AS2KIT_TEST_STORE = "postgres";
await import("./cem.test.js");
