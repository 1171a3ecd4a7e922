/**
 * What `as2 send` shows: on a TTY (a real pseudo-terminal from util-linux `script`) a spinner per
 * file and a progress bar with bytes and rate for a large file; nothing of that in a pipe or with
 * --quiet. And the config's transport properties reaching the wire: HTTPS with the configured CA
 * and client certificate, through tinyproxy with credentials, basic auth, User-Agent, chunked.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import * as http from "node:http";
import * as https from "node:https";
import type { AddressInfo } from "node:net";
import type { TLSSocket } from "node:tls";
import { join } from "node:path";
import { before, test } from "node:test";
import { onCleanup, opensslIdentity, tempDir } from "../helpers/tools.js";
import { NODE_ARGS } from "../helpers/as2-process.js";
import { makePki, PROXY_USER, startTinyproxy, type TestPki } from "../helpers/net.js";

const dir = tempDir();

interface Seen { headers: http.IncomingHttpHeaders; bytes: number; clientCn?: string }
const seen: Seen[] = [];

function sink(req: http.IncomingMessage, res: http.ServerResponse, throttle: boolean): void {
  let bytes = 0;
  req.on("data", (c: Buffer) => {
    bytes += c.length;
    if (throttle) { req.pause(); setTimeout(() => req.resume(), 15); } // about 4 MB/s: slow enough to draw a bar
  });
  req.on("end", () => {
    seen.push({ headers: req.headers, bytes, clientCn: (req.socket as TLSSocket).getPeerCertificate?.()?.subject?.CN as string | undefined });
    res.writeHead(200, { "Content-Type": "text/plain" });
    res.end("ok");
  });
}

async function serve(server: http.Server): Promise<number> {
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  onCleanup(() => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }));
  return (server.address() as AddressInfo).port;
}

let slowUrl = "";
let pki: TestPki;
let httpsUrl = "";
let tiny = 0;

before(async () => {
  opensslIdentity("myco", dir);
  opensslIdentity("acme", dir);
  pki = makePki(dir);
  slowUrl = `http://127.0.0.1:${await serve(http.createServer((q, s) => sink(q, s, true)))}/as2`;
  httpsUrl = `https://127.0.0.1:${await serve(https.createServer({ key: readFileSync(pki.serverKey), cert: readFileSync(pki.serverCert), ca: [readFileSync(pki.caCert)], requestCert: true, rejectUnauthorized: true }, (q, s) => sink(q, s, false)))}/as2`;
  tiny = await startTinyproxy(dir);
});

function config(name: string, partner: Record<string, unknown>): string {
  const file = join(dir, `${name}.json`);
  writeFileSync(file, JSON.stringify({
    dataDir: "./data",
    station: { as2Id: "MYCO", key: { pem: "myco.key", certificate: "myco.crt" } },
    partners: { acme: { as2Id: "ACME", certificate: "acme.crt", mdn: { request: "none" }, ...partner } },
  }));
  return file;
}

function run(cmd: string, args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { env: { ...process.env, NO_COLOR: "1", COLUMNS: "120" }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on("data", (d: Buffer) => { stderr += d.toString(); });
    child.on("close", (status) => resolve({ status, stdout, stderr }));
  });
}

const big = () => {
  const p = join(dir, "big.edi");
  writeFileSync(p, Buffer.alloc(6 * 1024 * 1024, "UNB+UNOA:2+MYCO+ACME'\n"));
  return p;
};

test("on a TTY: a spinner per file, a progress bar with bytes and rate, a final mark", async () => {
  const cfg = config("tty", { url: slowUrl });
  const cmd = [process.execPath, ...NODE_ARGS, "send", "--config", cfg, "--partner", "acme", big()].map((a) => `'${a}'`).join(" ");
  const r = await run("script", ["-qec", cmd, "/dev/null"]);
  assert.equal(r.status, 0, r.stdout);
  assert.match(r.stdout, /[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] (preparing|sending) big\.edi \[[#-]{24}\] +\d+% [\d.]+ [KM]B\/[\d.]+ MB [\d.]+ [KM]B\/s/);
  assert.match(r.stdout, /✔ big\.edi SUCCESS/);
  // ora redraws in place: to column 1, clear the line.
  assert.match(r.stdout, /\x1b\[1G\x1b\[0K/);
});

/** The screen lines a pseudo-terminal shows: each redraw starts at column 1 (ESC [1G) or after a CR/LF. */
function renderedLines(out: string): string[] {
  // eslint-disable-next-line no-control-regex
  return out.split(/\x1b\[1G|\r|\n/).map((l) => l.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, "")).filter((l) => l.length);
}

for (const cols of [60, 80, 120]) {
  test(`at ${cols} columns every spinner and progress redraw fits the terminal (no wrapped line that could not be redrawn in place)`, async () => {
    const cfg = config(`cols${cols}`, { url: slowUrl });
    const cmd = `stty cols ${cols} rows 40; ${[process.execPath, ...NODE_ARGS, "send", "--config", cfg, "--partner", "acme", big()].map((a) => `'${a}'`).join(" ")}`;
    const r = await run("script", ["-qec", cmd, "/dev/null"]);
    assert.equal(r.status, 0, r.stdout);
    // The spinner's lines (a frame or a final mark first); the result table on stdout may be wider.
    const lines = renderedLines(r.stdout).filter((l) => /^[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏✔✖…] /.test(l));
    assert.ok(lines.some((l) => /sending big\.edi/.test(l)), "a sending line was drawn");
    for (const l of lines) assert.ok([...l].length <= cols, `a line of ${[...l].length} columns at ${cols}: ${JSON.stringify(l)}`);
  });
}

test("colour follows stderr: stdout redirected to a file on a terminal keeps the colours; NO_COLOR and pipes have no escape codes", async () => {
  const cfg = config("colour", { url: slowUrl });
  const out = join(dir, "colour-stdout.txt");
  const base = [process.execPath, ...NODE_ARGS, "send", "--config", cfg, "--partner", "acme", big()].map((a) => `'${a}'`).join(" ");
  const coloured = await new Promise<{ status: number | null; stdout: string }>((resolve) => {
    const env: NodeJS.ProcessEnv = { ...process.env, COLUMNS: "120" };
    delete env.NO_COLOR;
    delete env.FORCE_COLOR;
    const child = spawn("script", ["-qec", `${base} > '${out}'`, "/dev/null"], { env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    child.stdout.on("data", (d: Buffer) => { stdout += d.toString(); });
    child.on("close", (status) => resolve({ status, stdout }));
  });
  assert.equal(coloured.status, 0, coloured.stdout);
  assert.match(coloured.stdout, /\x1b\[3[0-9]m/, "colour on the terminal's stderr although stdout is a file");
  assert.doesNotMatch(readFileSync(out, "utf8"), /\x1b\[/, "no escape codes in the redirected stdout");
  const noColor = await run("script", ["-qec", base, "/dev/null"]);
  assert.doesNotMatch(noColor.stdout, /\x1b\[3[0-9]m/, "NO_COLOR (set by run()): no colour");
});

test("--quiet on a TTY, and any pipe: no spinner, no progress, only the result", async () => {
  const cfg = config("quiet", { url: slowUrl });
  const cmd = [process.execPath, ...NODE_ARGS, "send", "--config", cfg, "--partner", "acme", "--quiet", big()].map((a) => `'${a}'`).join(" ");
  const tty = await run("script", ["-qec", cmd, "/dev/null"]);
  assert.equal(tty.status, 0, tty.stdout);
  assert.doesNotMatch(tty.stdout, /[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏✔]|\x1b\[/);
  assert.match(tty.stdout, /SUCCESS +big\.edi/);
  const piped = await run(process.execPath, [...NODE_ARGS, "send", "--config", cfg, "--partner", "acme", big()]);
  assert.equal(piped.status, 0, piped.stderr);
  assert.equal(piped.stderr, "");
  assert.match(piped.stdout, /^\S+ {2}SUCCESS {2}1 file to acme \(ACME\)\n {2}SUCCESS +big\.edi {2}<[^>]+> {2}Not Requested\n$/);
});

test("the config's transport properties reach the wire: HTTPS with CA and client certificate, HTTP proxy with credentials, basic auth, User-Agent, chunked", async () => {
  seen.length = 0;
  const cfg = config("wire", {
    url: httpsUrl, username: "myco", password: "s3cret", userAgent: "as2kit-e2e/1", chunked: true, connectTimeout: 5, readTimeout: 10,
    tls: { ca: [pki.caCert], clientCertificate: pki.clientCert, clientKey: pki.clientKey, minVersion: "TLSv1.2" },
    proxy: { type: "http", host: "127.0.0.2", alternateHost: "127.0.0.1", port: tiny, ...PROXY_USER },
  });
  const r = await run(process.execPath, [...NODE_ARGS, "send", "--config", cfg, "--partner", "acme", "--json", big()]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(seen.length, 1);
  const s = seen[0]!;
  assert.equal(s.clientCn, "client");
  assert.equal(s.headers.authorization, `Basic ${Buffer.from("myco:s3cret").toString("base64")}`);
  assert.equal(s.headers["user-agent"], "as2kit-e2e/1");
  assert.equal(s.headers["transfer-encoding"], "chunked");
  assert.equal(s.headers["proxy-authorization"], undefined);
  const job = JSON.parse(r.stdout);
  assert.equal(job.state, "SUCCESS");
  assert.equal(job.sendDetails[0].bodyBytes, s.bytes);
  // Secrets never reach the job record.
  assert.doesNotMatch(readFileSync(join(dir, "data", "jobs", `${job.runId}.json`), "utf8"), /s3cret|proxy-Pass/);
});
