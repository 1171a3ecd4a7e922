/**
 * Raw AS2 POSTs for tests that must control timing: one connection per request, and a burst
 * whose bodies all go out but their last byte, then finish together (so a receiver really
 * handles the copies at the same moment).
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as http from "node:http";
import { setTimeout as sleep } from "node:timers/promises";

export interface Req { headers: Record<string, string>; body: Buffer }
export interface Res { status: number; headers: http.IncomingHttpHeaders; body: Buffer }

export function request(url: string, r: Req, gate?: Promise<void>, onWritten?: () => void): Promise<Res> {
  const target = new URL(url);
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(r.headers)) if (!/^(host|content-length|transfer-encoding|connection)$/i.test(k)) headers[k] = v;
  headers["Content-Length"] = String(r.body.length);
  return new Promise<Res>((resolve, reject) => {
    const req = http.request({ host: target.hostname, port: Number(target.port), path: target.pathname, method: "POST", headers, agent: false }, (res) => {
      const parts: Buffer[] = [];
      res.on("data", (c: Buffer) => parts.push(c));
      res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(parts) }));
      res.on("error", reject);
    });
    req.on("error", reject);
    if (!gate) { req.end(r.body); return; }
    req.write(r.body.subarray(0, -1), () => onWritten?.());
    void gate.then(() => req.end(r.body.subarray(-1)));
  });
}

export function postTogether(url: string, reqs: Req[]): Promise<Res[]> {
  let written = 0;
  let release!: () => void;
  const allWritten = new Promise<void>((r) => { release = r; });
  const timer = setTimeout(() => release(), 5_000);
  const gate = allWritten.then(() => { clearTimeout(timer); return sleep(50); });
  return Promise.all(reqs.map((r) => request(url, r, gate, () => { if (++written === reqs.length) release(); })));
}

/** A `as2 send --dry-run` file: request line, headers, blank line, body. */
export function readDryRun(file: string): Req {
  const bytes = readFileSync(file);
  const end = bytes.indexOf("\r\n\r\n");
  assert.ok(end > 0, `${file}: no end of headers`);
  const lines = bytes.subarray(0, end).toString("latin1").split("\r\n");
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    headers[line.slice(0, colon)] = line.slice(colon + 1).trim();
  }
  return { headers, body: bytes.subarray(end + 4) };
}
