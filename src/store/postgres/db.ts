/**
 * The connection to PostgreSQL for the shared store (issue 15): one pg.Pool per process and URL.
 * Every query goes through `Db.query`/`Db.tx`, which turn the driver's failures into As2Error:
 * STORE_UNAVAILABLE when the database cannot be reached (refused, restarted, shut down; the
 * receive server answers 503 with Retry-After then, never a positive MDN it cannot record) and
 * STORE_FAILED otherwise. The URL's password never appears in a message: `redactUrl` everywhere.
 */
import type pg from "pg";
import { As2Error, ErrorCodes } from "../../core/errors.js";

/** The URL with its password (and any password parameter) replaced by "***". */
export function redactUrl(url: string): string {
  return url.replace(/^(postgres(?:ql)?:\/\/[^:/@]*:)[^@]*@/i, "$1***@").replace(/([?&]password=)[^&]*/gi, "$1***");
}

/** Removes the password wherever it might occur in a driver message. */
function scrub(text: string, url: string): string {
  let out = text.split(url).join(redactUrl(url));
  try {
    const pw = decodeURIComponent(new URL(url).password);
    if (pw.length >= 3) out = out.split(pw).join("***");
  } catch { /* not a URL the WHATWG parser takes: nothing more to scrub */ }
  return out;
}

/** Errors that mean the database is not there right now, not that a statement was wrong. */
function unavailable(e: unknown): boolean {
  const err = e as { code?: string; message?: string };
  const code = err.code ?? "";
  if (["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE", "ENOTFOUND", "EHOSTUNREACH", "EAI_AGAIN"].includes(code)) return true;
  // 08: connection exception; 57P01-57P03: admin/crash shutdown, cannot connect now; 53300: too many connections.
  if (/^08/.test(code) || /^57P0[123]$/.test(code) || code === "53300") return true;
  return /Connection terminated|connection timeout|Client has encountered a connection error|not queryable/i.test(err.message ?? "");
}

export function isStoreUnavailable(e: unknown): boolean {
  return e instanceof As2Error && e.code === ErrorCodes.STORE_UNAVAILABLE;
}

export class Db {
  private pooled: Promise<pg.Pool> | undefined;
  readonly where: string;

  constructor(readonly url: string) {
    this.where = redactUrl(url);
  }

  /** The pool, made on first use: loading the driver costs a command that never queries (measured 0.3 s). */
  private pool(): Promise<pg.Pool> {
    return (this.pooled ??= import("pg").then(({ default: driver }) => {
      const pool = new driver.Pool({
        connectionString: this.url,
        max: 10,
        connectionTimeoutMillis: 5000,
        // Idle connections do not keep a short command (as2 status, as2 send) from exiting.
        allowExitOnIdle: true,
        idleTimeoutMillis: 10_000,
      });
      // A pooled client that the server drops (restart) emits here; the next query reconnects.
      pool.on("error", () => undefined);
      return pool;
    }));
  }

  wrap(e: unknown, what: string): As2Error {
    if (e instanceof As2Error) return e;
    const message = scrub((e as Error).message ?? String(e), this.url);
    if (unavailable(e)) {
      return new As2Error(ErrorCodes.STORE_UNAVAILABLE, `the database ${this.where} is unavailable (${what}): ${message}`, {
        suggestion: "check that PostgreSQL runs and store.url is right; as2 retries on its own",
      });
    }
    return new As2Error(ErrorCodes.STORE_FAILED, `the database ${this.where} refused ${what}: ${message}`);
  }

  async query<R extends pg.QueryResultRow = pg.QueryResultRow>(what: string, sql: string, params: unknown[] = []): Promise<pg.QueryResult<R>> {
    try {
      return await (await this.pool()).query<R>(sql, params);
    } catch (e) {
      throw this.wrap(e, what);
    }
  }

  /** Runs `work` in one transaction on one connection; rolls back when it throws. */
  async tx<T>(what: string, work: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await (await this.pool()).connect();
    } catch (e) {
      throw this.wrap(e, what);
    }
    let broken = false;
    try {
      await client.query("BEGIN");
      const out = await work(client);
      await client.query("COMMIT");
      return out;
    } catch (e) {
      try {
        await client.query("ROLLBACK");
      } catch {
        broken = true;
      }
      throw this.wrap(e, what);
    } finally {
      client.release(broken);
    }
  }

  /** Runs `work` on one connection of its own (no transaction: the caller manages them). */
  async session<T>(what: string, work: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await (await this.pool()).connect();
    } catch (e) {
      throw this.wrap(e, what);
    }
    let failed = false;
    try {
      return await work(client);
    } catch (e) {
      failed = true;
      throw this.wrap(e, what);
    } finally {
      // A connection that failed mid-session may hold a session lock or a broken transaction.
      client.release(failed);
    }
  }

  async end(): Promise<void> {
    const pool = this.pooled;
    this.pooled = undefined;
    if (pool) await (await pool).end();
  }
}
