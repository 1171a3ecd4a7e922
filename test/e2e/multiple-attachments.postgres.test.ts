/** The multiple-attachments suite (multiple-attachments.test.ts) against the PostgreSQL store (issue 15): the ledger entry with its parts is JSON there. */
process.env.AS2KIT_TEST_STORE = "postgres";
await import("./multiple-attachments.test.js");
