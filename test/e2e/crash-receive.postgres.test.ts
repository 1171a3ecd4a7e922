/** The SIGKILL receive suite (crash-receive.test.ts) against the PostgreSQL store (issue 15). */
process.env.AS2KIT_TEST_STORE = "postgres";
await import("./crash-receive.test.js");
