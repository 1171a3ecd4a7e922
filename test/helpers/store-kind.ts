/**
 * Runs a test file against either store kind (issue 15: the exactly-once suite runs against
 * both). AS2KIT_TEST_STORE=postgres (set by the *.postgres.test.ts twin of a file, which then
 * imports it) gives every station a database of its own on a throwaway PostgreSQL; unset, the
 * default local files.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { JobRecord } from "../../src/store/index.js";
import { startPostgres, type TestPostgres } from "./postgres.js";

export const STORE_KIND: "files" | "postgres" = process.env.AS2KIT_TEST_STORE === "postgres" ? "postgres" : "files";

let pg: Promise<TestPostgres> | undefined;
const databases = new Set<string>();

const variable = (station: string) => `AS2KIT_TEST_DB_${station.toUpperCase()}`;
const database = (station: string) => `station_${station.toLowerCase()}`;

/**
 * The `store` setting of a station's configuration: undefined for files; for postgres a
 * "${AS2KIT_TEST_DB_<STATION>}" reference (as a deployment would write it), the variable set in
 * this process's environment, which every `as2` child inherits.
 */
export async function storeSetting(station: string): Promise<Record<string, unknown> | undefined> {
  if (STORE_KIND === "files") return undefined;
  const db = await (pg ??= startPostgres());
  if (!databases.has(station)) {
    db.psql(`CREATE DATABASE "${database(station)}" OWNER as2`, "postgres");
    databases.add(station);
  }
  process.env[variable(station)] = db.url.replace(/\/as2$/, `/${database(station)}`);
  return { store: { kind: "postgres", url: `\${${variable(station)}}` } };
}

/** A station's job record, wherever its store keeps it. */
export async function readJobRecord(dataDir: string, station: string, runId: string): Promise<JobRecord> {
  if (STORE_KIND === "files") return JSON.parse(readFileSync(join(dataDir, "jobs", `${runId}.json`), "utf8")) as JobRecord;
  const db = await pg!;
  const out = db.psql(`SELECT record FROM as2_jobs WHERE run_id = '${runId.replace(/[^0-9A-Za-z-]/g, "")}'`, database(station)).trim();
  if (!out) throw new Error(`no job ${runId} in the database of ${station}`);
  return JSON.parse(out) as JobRecord;
}

/** Every job record of a station. */
export async function readJobRecords(dataDir: string, station: string): Promise<JobRecord[]> {
  if (STORE_KIND === "files") {
    const jobsDir = join(dataDir, "jobs");
    return (existsSync(jobsDir) ? readdirSync(jobsDir) : []).filter((f) => f.endsWith(".json") && !f.startsWith("."))
      .map((f) => JSON.parse(readFileSync(join(jobsDir, f), "utf8")) as JobRecord);
  }
  const db = await pg!;
  return db.psql("SELECT record FROM as2_jobs ORDER BY run_id", database(station)).split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l) as JobRecord);
}

/** The IDs in a station's outbound async-MDN queue. */
export async function queuedMdnIds(dataDir: string, station: string): Promise<string[]> {
  if (STORE_KIND === "files") {
    const queue = join(dataDir, "queue", "mdn");
    return (existsSync(queue) ? readdirSync(queue) : []).map((f) => f.replace(/\.json$/, ""));
  }
  const db = await pg!;
  return db.psql("SELECT id FROM as2_mdn_outbox ORDER BY id", database(station)).split("\n").filter((l) => l.trim());
}
