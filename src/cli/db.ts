/**
 * `as2 db migrate` (issue 15): applies the shared store's schema migrations now, instead of at
 * the first start of a node (which applies them too). Exit 0 when the schema is current (also
 * when nothing was to do), 1 when the database refused or could not be reached, 2 when the
 * configuration has no postgres store.
 */
import { migrate, openStore, PgStore } from "../store/index.js";
import { EXIT, loadContext, UsageError, type GlobalOptions } from "./context.js";

export async function dbMigrateCommand(g: GlobalOptions): Promise<number> {
  const ctx = await loadContext(g);
  const store = openStore(ctx.config);
  if (!(store instanceof PgStore)) throw new UsageError(`as2 db migrate works on a shared database: store.kind is "${store.kind}" (set store to { "kind": "postgres", "url": "\${AS2_DATABASE_URL}" })`);
  try {
    const result = await migrate(store.db);
    if (g.json) process.stdout.write(`${JSON.stringify({ database: store.where, applied: result.applied, version: result.current }, null, 2)}\n`);
    else {
      for (const m of result.applied) ctx.output.log(`applied migration ${m.version}: ${m.name}`);
      process.stdout.write(`db: schema version ${result.current} on ${store.where} (${result.applied.length ? `${result.applied.length} applied` : "up to date"})\n`);
    }
    return EXIT.OK;
  } finally {
    await store.close();
  }
}
