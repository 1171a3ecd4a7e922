/** The e-mail receipt tests (mdn-email.test.ts) against the PostgreSQL store (issue 15): the MDN queue there carries the mailto: entries too. */
process.env.AS2KIT_TEST_STORE = "postgres";
await import("./mdn-email.test.js");
