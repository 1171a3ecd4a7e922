/**
 * The README's first command (`npm run demo`): a real AS2 exchange between two stations on
 * 127.0.0.1, driven through the `as2` program exactly as a user would.
 *
 *   1. Generates a key and certificate for MYCO and for ACME, and a config file for each.
 *   2. Starts `as2 receive` for ACME (the partner) and for MYCO (its endpoint for async MDNs).
 *   3. `as2 send`: signed + compressed + encrypted, signed sync MDN, verified check by check.
 *   4. `as2 send`: the same with an async MDN, posted back to MYCO's server (`--wait-mdn`).
 *   5. `as2 status` on both sides, and 6. the first job in detail; then it stops the servers and
 *      removes everything it made.
 *
 * `npm run demo -- <file>` sends that file instead of examples/sample-order.edi.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createSelfSignedCertificate } from "./core/index.js";

const BIN = fileURLToPath(new URL("../bin/as2.js", import.meta.url));
const SAMPLE = fileURLToPath(new URL("../examples/sample-order.edi", import.meta.url));
/** The whole demo gives up after this long (a hung step must not hang a fresh clone's first command). */
const DEMO_TIMEOUT_MS = 120_000;

const say = (s: string) => process.stdout.write(`${s}\n`);

function as2(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, ["--openssl-legacy-provider", BIN, ...args], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NO_COLOR: "1" } });
    let stdout = "";
    let stderr = "";
    c.stdout.on("data", (d: Buffer) => { stdout += d.toString(); });
    c.stderr.on("data", (d: Buffer) => { stderr += d.toString(); });
    c.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

/** Starts `as2 receive --json` and resolves with its URL once it listens. */
function startReceiver(config: string, label: string): Promise<{ proc: ChildProcess; url: string }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ["--openssl-legacy-provider", BIN, "receive", "--config", config, "--json"], { stdio: ["ignore", "pipe", "pipe"] });
    let buf = "";
    let err = "";
    proc.stderr!.on("data", (d: Buffer) => { err += d.toString(); });
    proc.once("exit", (code) => reject(new Error(`${label}'s as2 receive exited with ${code}: ${err}`)));
    proc.stdout!.on("data", (d: Buffer) => {
      buf += d.toString();
      let nl;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const e = JSON.parse(buf.slice(0, nl)) as { event: string; url?: string; file?: string; disposition?: string; messageId?: string };
        buf = buf.slice(nl + 1);
        if (e.event === "listening") resolve({ proc, url: e.url! });
        else if (e.event === "message") say(`   [${label} server] received ${e.messageId} -> ${e.file ?? "(not stored)"}: ${e.disposition}`);
        else if (e.event === "mdn") say(`   [${label} server] async MDN for ${e.messageId}: ${e.disposition}`);
        else if (e.event === "mdn-sent") say(`   [${label} server] async MDN for ${e.messageId} posted`);
      }
    });
  });
}

function indent(text: string): string {
  return text.trimEnd().split("\n").map((l) => `   ${l}`).join("\n");
}

async function main(): Promise<number> {
  const file = process.argv[2] ?? SAMPLE;
  const dir = mkdtempSync(join(tmpdir(), "as2kit-demo-"));
  const servers: ChildProcess[] = [];
  try {
    say(`as2kit demo: two stations on 127.0.0.1, working in ${dir}`);
    say("1. keys and configuration");
    const now = Date.now();
    for (const name of ["myco", "acme"]) {
      const id = await createSelfSignedCertificate({ commonName: `${name.toUpperCase()} demo`, notBefore: new Date(now - 3_600_000), notAfter: new Date(now + 365 * 86_400_000) });
      writeFileSync(join(dir, `${name}.key`), id.keyPem, { mode: 0o600 });
      writeFileSync(join(dir, `${name}.crt`), id.certificatePem);
      say(`   ${name.toUpperCase()}: ${id.certificate.describe()}`);
    }
    const write = (name: string, config: unknown) => {
      writeFileSync(join(dir, name), JSON.stringify(config, null, 2));
      return join(dir, name);
    };
    const acmeConfig = write("acme.json", {
      dataDir: "./acme-data",
      station: { as2Id: "ACME", key: { pem: "acme.key", certificate: "acme.crt" } },
      receive: { host: "127.0.0.1", port: 0, path: "/as2" },
      partners: { myco: { as2Id: "MYCO", url: "http://127.0.0.1:9/unused", certificate: "myco.crt", inbound: { asyncMdnUrls: ["http://127.0.0.1:*"], requireSigned: true, requireEncrypted: true } } },
    });
    const mycoReceiveConfig = write("myco-receive.json", {
      dataDir: "./myco-data",
      station: { as2Id: "MYCO", key: { pem: "myco.key", certificate: "myco.crt" } },
      receive: { host: "127.0.0.1", port: 0, path: "/mdn" },
      partners: { acme: { as2Id: "ACME", url: "http://127.0.0.1:9/unused", certificate: "acme.crt" } },
    });

    say("2. as2 receive for ACME (the partner) and for MYCO (async MDNs come back here)");
    const acme = await startReceiver(acmeConfig, "ACME");
    servers.push(acme.proc);
    const myco = await startReceiver(mycoReceiveConfig, "MYCO");
    servers.push(myco.proc);
    say(`   ACME listens on ${acme.url}; MYCO on ${myco.url}`);
    const mycoConfig = write("myco.json", {
      dataDir: "./myco-data",
      station: { as2Id: "MYCO", key: { pem: "myco.key", certificate: "myco.crt" }, asyncMdnUrl: myco.url },
      partners: {
        acme: {
          as2Id: "ACME", url: acme.url, certificate: "acme.crt",
          sign: "sha256", encrypt: "aes256-cbc", compress: "before-signing", mdn: { request: "signed", mode: "sync" },
        },
      },
    });

    let ok = true;
    const step = async (title: string, args: string[]) => {
      say(title);
      const r = await as2(args);
      say(indent(r.stderr || r.stdout));
      if (r.code !== 0) {
        say(`   -> exit ${r.code}`);
        ok = false;
      }
      return r;
    };
    await step("3. as2 send: signed (sha256) + compressed + encrypted (aes256-cbc), signed sync MDN",
      ["send", "--config", mycoConfig, "--partner", "acme", "--subject", "Demo order (sync MDN)", file]);
    await step("4. as2 send: the same with an async MDN, waited for",
      ["send", "--config", mycoConfig, "--partner", "acme", "--mdn-mode", "async", "--wait-mdn", "60", "--subject", "Demo order (async MDN)", file]);
    const mine = await step("5. as2 status on MYCO (the sender)", ["status", "--config", mycoConfig]);
    await step("   and on ACME (the receiver)", ["status", "--config", acmeConfig]);
    const page = await as2(["status", "--config", mycoConfig, "--json", "--direction", "send"]);
    const records = (JSON.parse(page.stdout) as { records: Array<{ runId: string; state: string }> }).records;
    if (records.length !== 2 || records.some((r) => r.state !== "SUCCESS") || !mine.stdout.includes("AS2 Send")) ok = false;
    if (records.length) await step("6. as2 status <runId>: the first transfer in detail, with its MDN checks", ["status", "--config", mycoConfig, records[records.length - 1]!.runId]);
    say(ok ? "demo: OK (both transfers confirmed by verified, signed MDNs)" : "demo: FAILED");
    return ok ? 0 : 1;
  } finally {
    for (const s of servers) {
      s.removeAllListeners("exit");
      s.kill("SIGTERM");
    }
    await Promise.all(servers.map((s) => (s.exitCode === null && s.signalCode === null ? new Promise((r) => s.once("exit", r)) : undefined)));
    rmSync(dir, { recursive: true, force: true });
  }
}

const guard = setTimeout(() => {
  process.stderr.write(`demo: gave up after ${DEMO_TIMEOUT_MS / 1000} s\n`);
  process.exit(1);
}, DEMO_TIMEOUT_MS);
guard.unref();
process.exitCode = await main().catch((e: Error) => {
  process.stderr.write(`demo: ${e.message}\n`);
  return 1;
});
