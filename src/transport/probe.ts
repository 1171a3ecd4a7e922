/**
 * "Test Connection" (issue 16; the enterprise connector's button): the way to a partner taken one
 * step at a time, each timed and given a verdict — DNS, TCP (to the proxy or the host), the proxy
 * handshake, TLS (chain, expiry, client certificate), an HTTP request with the credentials. The
 * steps are connect.ts's own pieces (connectSteps), so what passes here is what `as2 send` does.
 * A failed step stops the later ones. Knows nothing of configuration files: it takes the resolved
 * PostSpec, and the key paths to name in advice as labels.
 */
import { X509Certificate } from "node:crypto";
import { lookup } from "node:dns/promises";
import * as http from "node:http";
import * as net from "node:net";
import type * as tls from "node:tls";
import { As2Error, ErrorCodes } from "../core/index.js";
import { basicCredentials, connectSteps, isUnreachable, openConnection, type ProxySpec, type Target } from "./connect.js";
import { onceAgent, type PostSpec } from "./post.js";

export type ProbeVerdict = "pass" | "fail" | "warn" | "skip";
export type ProbeStepName = "dns" | "tcp" | "proxy" | "tls" | "http";
export const PROBE_STEPS: readonly ProbeStepName[] = ["dns", "tcp", "proxy", "tls", "http"];

export interface ProbeStep {
  name: ProbeStepName;
  verdict: ProbeVerdict;
  /** Milliseconds the step took (0 when skipped). */
  ms: number;
  detail: string;
}

/** What to call the settings in advice ("add the CA to partners.acme.tls.ca"). */
export interface ProbeLabels {
  ca: string;
  clientCertificate: string;
  rejectUnauthorized: string;
  credentials: string;
  proxyCredentials: string;
  followRedirects: string;
  timeout: string;
}

const DEFAULT_LABELS: ProbeLabels = {
  ca: "tls.ca", clientCertificate: "tls.clientCertificate", rejectUnauthorized: "tls.rejectUnauthorized", credentials: "username/password",
  proxyCredentials: "proxy.username/password", followRedirects: "followRedirects", timeout: "the timeout",
};

export interface ProbeOptions {
  spec: Pick<PostSpec, "url" | "tls" | "proxy" | "auth" | "userAgent" | "followRedirects">;
  /** Each step's time limit (the HTTP step's fallbacks and an alternate proxy get their own). */
  stepTimeoutMs: number;
  /** For the server certificate's expiry (architecture §3.7: time is injected). */
  now: Date;
  /** Certificates expiring within this many days are a warning. */
  expiryWarningDays?: number;
  /** Where the proxy comes from ("partners.acme.proxy", "from HTTPS_PROXY"), said with it. */
  proxySource?: string;
  /** Said in the proxy step when no proxy is used (e.g. why an environment proxy is not). */
  proxyNote?: string;
  labels?: Partial<ProbeLabels>;
  /** Each step as it finishes (skipped ones too), for live output. */
  onStep?(step: ProbeStep): void;
  signal?: AbortSignal;
}

export interface ProbeResult {
  /** No step failed (warnings allowed). */
  ok: boolean;
  steps: ProbeStep[];
}

/** A step failed with this explanation. */
class StepFailure extends Error {}

/** How long, after a TLS 1.3 handshake, to wait for the server's verdict on our client certificate. */
const CLIENT_CERT_VERDICT_MS = 1500;
/** HTTP methods tried in turn while the server answers 405/501 (as2-reference X3: HEAD answers 200). */
const METHODS = ["HEAD", "OPTIONS", "GET"] as const;
const DAY_MS = 86_400_000;

const DOING: Record<ProbeStepName, string> = {
  dns: "resolving the host name", tcp: "connecting", proxy: "the proxy handshake", tls: "the TLS handshake", http: "the HTTP request",
};

type Outcome = { verdict: ProbeVerdict; detail: string };
const pass = (detail: string): Outcome => ({ verdict: "pass", detail });
const warn = (detail: string): Outcome => ({ verdict: "warn", detail });

function hostPort(host: string, port: number): string {
  return net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
}

const ERRNO_WORDS: Record<string, string> = {
  ECONNREFUSED: "connection refused: nothing listens on that port, or a firewall refuses",
  ETIMEDOUT: "no answer: a firewall may drop the packets",
  EHOSTUNREACH: "host unreachable",
  ENETUNREACH: "network unreachable",
  ECONNRESET: "the connection was reset",
  EPIPE: "the connection was closed",
  ENOTFOUND: "no such host",
  EAI_AGAIN: "the DNS server did not answer",
  EADDRNOTAVAIL: "address not available",
};

/** "connect ECONNREFUSED 127.0.0.1:9" -> "ECONNREFUSED (connection refused: ...)". */
function errnoText(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  if (err.code && ERRNO_WORDS[err.code]) return `${err.code} (${ERRNO_WORDS[err.code]})`;
  return err.code ?? err.message;
}

/** OpenSSL's "…:SSL routines:ssl3_read_bytes:tlsv13 alert certificate required:…" -> its reason. */
function sslReason(message: string): string {
  const m = /SSL routines:[^:]*:([^:]+):/.exec(message);
  return (m ? m[1]! : message).trim();
}

function isTlsAlert(e: unknown): boolean {
  const err = e as NodeJS.ErrnoException;
  return (err.code?.startsWith("ERR_SSL_") ?? false) || /alert/i.test(err.message ?? "");
}

/** Runs `fn` under its own time limit, also ended by the caller's signal. */
async function limited<T>(ms: number, label: string, outer: AbortSignal | undefined, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(new As2Error(ErrorCodes.TIMEOUT, `no answer within ${ms / 1000} s (${label})`)), ms);
  const onOuter = () => ctl.abort(outer!.reason);
  if (outer?.aborted) onOuter();
  outer?.addEventListener("abort", onOuter, { once: true });
  try {
    // A step that does not watch the signal (a DNS lookup) still ends at the limit.
    const aborted = new Promise<never>((_, reject) => {
      if (ctl.signal.aborted) reject(ctl.signal.reason);
      ctl.signal.addEventListener("abort", () => reject(ctl.signal.reason), { once: true });
    });
    return await Promise.race([fn(ctl.signal), aborted]);
  } finally {
    clearTimeout(timer);
    outer?.removeEventListener("abort", onOuter);
  }
}

/** The chain the server sent, leaf first: "CN=server <- CN=test-ca". */
function chainText(s: tls.TLSSocket): string {
  const names: string[] = [];
  const seen = new Set<string>();
  let c: tls.DetailedPeerCertificate | undefined = s.getPeerCertificate(true);
  while (c && c.fingerprint256 && !seen.has(c.fingerprint256)) {
    seen.add(c.fingerprint256);
    const cn = c.subject?.CN;
    names.push(cn ? `CN=${Array.isArray(cn) ? cn.join("+") : cn}` : "(no CN)");
    c = c.issuerCertificate;
  }
  return names.join(" <- ");
}

function subjectOf(pem: Buffer | undefined): string | undefined {
  if (!pem) return undefined;
  try {
    return new X509Certificate(pem).subject.split("\n").filter(Boolean).join(", ");
  } catch {
    return undefined;
  }
}

/**
 * After a TLS 1.3 handshake the server judges our certificate (or its absence) and answers with
 * session tickets or an alert (RFC 8446 §4.4.2.4 lets it do either after its Finished).
 */
function clientCertVerdict(s: tls.TLSSocket, ms: number, late: { error?: Error }): Promise<"accepted" | "refused" | "unknown"> {
  if (late.error) return Promise.resolve("refused");
  return new Promise((resolve) => {
    const done = (v: "accepted" | "refused" | "unknown") => {
      clearTimeout(timer);
      s.off("session", onSession);
      s.off("error", onError);
      s.off("close", onClose);
      // Not from inside the session callback: Node is still in the middle of reading the
      // server's records there, and a request written at that moment is never sent.
      setImmediate(() => resolve(v));
    };
    const onSession = () => done("accepted");
    const onError = () => done("refused");
    // A server that asked for a certificate and then hangs up without a word has refused it.
    const onClose = () => done("refused");
    const timer = setTimeout(() => done("unknown"), ms);
    s.once("session", onSession);
    s.once("error", onError);
    s.once("close", onClose);
  });
}

/** Probes the way to `spec.url`, step by step. Never throws for a network failure: it is a step's verdict. */
export async function probeConnection(o: ProbeOptions): Promise<ProbeResult> {
  const L: ProbeLabels = { ...DEFAULT_LABELS, ...o.labels };
  const url = new URL(o.spec.url);
  const secure = url.protocol === "https:";
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
  const port = Number(url.port || (secure ? 443 : 80));
  const target: Target = { host, port, secure };
  const proxy: ProxySpec | undefined = o.spec.proxy;
  const spec = o.spec;
  const steps: ProbeStep[] = [];
  const sockets: net.Socket[] = [];
  const limit = o.stepTimeoutMs;
  const warnDays = o.expiryWarningDays ?? 30;
  let socket: net.Socket | undefined;
  let proxyHost = proxy?.host;
  let forwardProxy = false;
  let failed = false;
  /** What TLS learnt about client certificates, for explaining a refusal later. */
  const clientCert = { requested: false, configured: !!spec.tls?.cert, subject: subjectOf(spec.tls?.cert) };
  const late: { error?: Error } = {};

  const clientCertHint = (): string => {
    if (!clientCert.configured) return `; the server may require a client certificate, and none is configured (${L.clientCertificate})`;
    return `; the server may not accept our client certificate ${clientCert.subject ?? ""}`.trimEnd();
  };

  async function step(name: ProbeStepName, fn: (signal: AbortSignal) => Promise<Outcome>, attempts = 1): Promise<void> {
    let s: ProbeStep;
    if (failed) s = { name, verdict: "skip", ms: 0, detail: "not reached" };
    else {
      const t0 = performance.now();
      let out: Outcome;
      try {
        out = await limited(limit * attempts, `${L.timeout}`, o.signal, fn);
      } catch (e) {
        out = { verdict: "fail", detail: e instanceof StepFailure ? e.message : describe(name, e) };
      }
      // A skipped step took no time of its own (ProbeStep.ms): what the clock shows is the wait
      // for this event loop, which on a busy machine is tens of milliseconds (CI saw "SKIP tls 26 ms").
      s = { name, verdict: out.verdict, ms: out.verdict === "skip" ? 0 : Math.round(performance.now() - t0), detail: out.detail };
    }
    if (s.verdict === "fail") failed = true;
    steps.push(s);
    o.onStep?.(s);
  }

  function describe(name: ProbeStepName, e: unknown): string {
    const suggestion = e instanceof As2Error && e.suggestion ? `; ${e.suggestion}` : "";
    if (e instanceof As2Error && e.code === ErrorCodes.TIMEOUT) return `${DOING[name]}: ${e.message}`;
    if (name === "tls" || (name === "proxy" && e instanceof As2Error && e.code === ErrorCodes.TLS_FAILED)) {
      const msg = sslReason((e as Error).message);
      const ended = /alert|disconnected|ECONNRESET|socket hang up/i.test(msg);
      return `${msg}${suggestion}${ended && name === "tls" ? clientCertHint() : ""}`;
    }
    if (e instanceof As2Error) return `${e.message}${suggestion}`;
    return errnoText(e);
  }

  try {
    await step("dns", async () => {
      const names = proxy ? [proxy.host, ...(proxy.alternateHost ? [proxy.alternateHost] : [])] : [host];
      const byProxy = proxy && !net.isIP(host) ? `; the proxy resolves the partner's host ${host}` : "";
      const toResolve = names.filter((n) => !net.isIP(n));
      if (!toResolve.length) return { verdict: "skip", detail: `${names.join(", ")}: IP address${names.length > 1 ? "es" : ""}, nothing to resolve${byProxy}` };
      const results = await Promise.all(toResolve.map(async (n) => {
        try {
          return { n, text: `${n} -> ${(await lookup(n, { all: true })).map((a) => a.address).join(", ")}` };
        } catch (e) {
          return { n, error: `cannot resolve ${n}: ${errnoText(e)}` };
        }
      }));
      const bad = results.filter((r) => r.error);
      const detail = results.map((r) => r.text ?? r.error).join("; ") + byProxy;
      if (!bad.length) return pass(detail);
      // The alternate proxy host is there for a primary that cannot be reached.
      if (proxy?.alternateHost && bad.length < names.length && !bad.some((b) => b.n === proxy.alternateHost)) return warn(detail);
      throw new StepFailure(detail);
    });

    await step("tcp", async (signal) => {
      if (!proxy) {
        const s = await connectSteps.tcp(host, port, signal).catch((e: unknown) => {
          throw e instanceof As2Error ? e : new StepFailure(`cannot connect to ${hostPort(host, port)}: ${errnoText(e)}`);
        });
        sockets.push(s);
        socket = s;
        const addr = s.remoteAddress && s.remoteAddress !== host ? ` (${s.remoteAddress})` : "";
        return pass(`connected to ${hostPort(host, port)}${addr}`);
      }
      const hosts = [proxy.host, ...(proxy.alternateHost ? [proxy.alternateHost] : [])];
      const errors: string[] = [];
      for (const h of hosts) {
        try {
          const s = await limited(limit, L.timeout, signal, (sig) => connectSteps.tcp(h, proxy.port, sig));
          sockets.push(s);
          socket = s;
          proxyHost = h;
          const text = `connected to the ${proxy.type} proxy ${hostPort(h, proxy.port)}${o.proxySource ? ` (${o.proxySource})` : ""}`;
          return errors.length ? warn(`${errors.join("; ")}; ${text} (the alternate host)`) : pass(text);
        } catch (e) {
          errors.push(`cannot connect to the ${proxy.type} proxy ${hostPort(h, proxy.port)}: ${e instanceof As2Error ? e.message : errnoText(e)}`);
          if (!isUnreachable(e)) break;
        }
      }
      throw new StepFailure(errors.join("; "));
    }, proxy?.alternateHost ? 2 : 1);

    await step("proxy", async (signal) => {
      if (!proxy) return { verdict: "skip", detail: `no proxy: direct connection${o.proxyNote ? `; ${o.proxyNote}` : ""}` };
      const via = `the ${proxy.type} proxy ${hostPort(proxyHost!, proxy.port)}`;
      const user = proxy.username !== undefined ? ` as ${proxy.username}` : "";
      if (proxy.type === "socks4" || proxy.type === "socks5") {
        socket = await connectSteps.socks(socket!, proxyHost!, target, proxy, signal);
        return pass(`${via} connected us${user} to ${hostPort(host, port)}`);
      }
      let s = socket!;
      // An "https" proxy is reached over TLS itself, checked with the same CA list (as connect.ts does).
      if (proxy.type === "https") {
        s = await connectSteps.tls(s, proxyHost!, { ca: spec.tls?.ca, rejectUnauthorized: spec.tls?.rejectUnauthorized }, signal);
        sockets.push(s);
      }
      if (!secure) {
        socket = s;
        forwardProxy = true;
        return pass(`${via} reached${proxy.type === "https" ? " over TLS" : ""}; plain HTTP goes through it as absolute-URI requests (its answer is the HTTP step's)`);
      }
      socket = await connectSteps.httpConnect(s, target, proxy, signal);
      return pass(`${via} accepted CONNECT ${hostPort(host, port)}${user}`);
    });

    await step("tls", async (signal) => {
      if (!secure) return { verdict: "skip", detail: "http:// URL: no TLS" };
      const s = await connectSteps.tls(socket!, host, spec.tls, signal);
      sockets.push(s);
      socket = s;
      // A refused client certificate (TLS 1.3) arrives as an alert after the handshake: keep it.
      s.on("error", (e) => { late.error ??= e; });
      const warnings: string[] = [];
      const parts = [`${s.getProtocol() ?? "TLS"} ${s.getCipher()?.name ?? ""}`.trim()];
      const caCount = spec.tls?.ca?.length ?? 0;
      const trust = caCount ? `${L.ca} (${caCount} file${caCount === 1 ? "" : "s"})` : "the system's CA store";
      parts.push(`server ${chainText(s)}`);
      if (s.authorized) parts.push(`chain verified against ${trust}`);
      else warnings.push(`the server's certificate is NOT verified (${String(s.authorizationError)}): ${L.rejectUnauthorized} is false`);
      const peer = s.getPeerX509Certificate();
      if (peer) {
        const notAfter = new Date(peer.validTo);
        const left = Math.floor((notAfter.getTime() - o.now.getTime()) / DAY_MS);
        const date = notAfter.toISOString().slice(0, 10);
        if (left < 0) warnings.push(`the server's certificate expired on ${date}`);
        else if (left < warnDays) warnings.push(`the server's certificate expires in ${left} day${left === 1 ? "" : "s"}, on ${date}`);
        else parts.push(`certificate valid until ${date}`);
      }
      // On the client, OpenSSL fills the shared signature algorithms from the server's
      // CertificateRequest (RFC 8446 §4.3.2): a non-empty list means a client certificate was asked for.
      clientCert.requested = s.getSharedSigalgs().length > 0;
      const mine = clientCert.subject ?? "(configured)";
      if (!clientCert.requested) {
        parts.push(clientCert.configured ? `client certificate ${mine} configured, but the server did not ask for one` : "no client certificate asked for");
      } else {
        const verdict = s.getProtocol() === "TLSv1.3"
          ? await clientCertVerdict(s, Math.min(CLIENT_CERT_VERDICT_MS, limit), late)
          : "accepted"; // TLS 1.2: the server judged it before its Finished, which we have
        if (verdict === "refused") {
          const reason = late.error ? sslReason(late.error.message) : "it closed the connection right after the handshake";
          throw new StepFailure(clientCert.configured
            ? `the server refused our client certificate ${mine}: ${reason}; check that it trusts the certificate's issuer`
            : `the server requires a client certificate (${reason}); none is configured: set ${L.clientCertificate}`);
        }
        if (clientCert.configured) parts.push(verdict === "accepted" ? `client certificate ${mine} sent and accepted` : `client certificate ${mine} sent (the server has not confirmed it yet)`);
        else parts.push(verdict === "accepted" ? "the server asked for a client certificate and went on without one" : "the server asked for a client certificate; none is configured");
      }
      return warnings.length ? warn([...warnings, ...parts].join("; ")) : pass(parts.join("; "));
    });

    await step("http", async (signal) => {
      const path = `${url.pathname}${url.search}`;
      const answers: string[] = [];
      for (const [i, method] of METHODS.entries()) {
        let sock = socket!;
        if (i > 0) {
          // A fresh connection for each further request, made as `as2 send` makes it.
          const conn = await openConnection({ target, proxy, tls: spec.tls, timeoutMs: limit, signal });
          sockets.push(conn.socket);
          sock = conn.socket;
          forwardProxy = conn.forwardProxy;
        }
        let res: http.IncomingMessage;
        if (sock.destroyed) throw new StepFailure(`${method} ${path}: the server closed the connection before the request${secure && clientCert.requested ? clientCertHint() : ""}`);
        try {
          res = await limited(limit, L.timeout, signal, (sig) => request(sock, method, sig));
        } catch (e) {
          if (e instanceof As2Error && e.code === ErrorCodes.TIMEOUT) throw new StepFailure(`${method} ${path}: ${e.message}`);
          const err = late.error ?? (e as Error);
          if (secure && isTlsAlert(err)) throw new StepFailure(`${method} ${path}: the server ended the TLS connection: ${sslReason(err.message)}${clientCertHint()}`);
          const closed = /socket hang up|ECONNRESET|EPIPE/i.test(`${(err as NodeJS.ErrnoException).code} ${err.message}`);
          throw new StepFailure(`${method} ${path}: ${closed ? "the server closed the connection without answering" : errnoText(err)}${closed && secure && clientCert.requested ? clientCertHint() : ""}`);
        }
        const status = res.statusCode ?? 0;
        const line = `${method} ${path} -> ${status} ${res.statusMessage ?? ""}`.trimEnd();
        res.resume();
        if (status === 405 || status === 501) {
          answers.push(line);
          if (i < METHODS.length - 1) continue;
          const allow = res.headers.allow ? ` (Allow: ${res.headers.allow})` : "";
          return warn(`${answers.join("; ")}${allow}: the server answers, but takes none of ${METHODS.join(", ")}; an AS2 POST may still work`);
        }
        return judge(status, line, res, answers);
      }
      throw new StepFailure("no answer"); // not reached: the loop returns
    }, METHODS.length * 2);
  } finally {
    for (const s of sockets) s.destroy();
  }
  return { ok: !steps.some((s) => s.verdict === "fail"), steps };

  function request(sock: net.Socket, method: string, signal: AbortSignal): Promise<http.IncomingMessage> {
    const h: Record<string, string> = { Host: url.host, Accept: "*/*", Connection: "close" };
    if (spec.userAgent) h["User-Agent"] = spec.userAgent;
    if (spec.auth) h.Authorization = basicCredentials(spec.auth.username, spec.auth.password);
    if (forwardProxy && proxy?.username !== undefined) h["Proxy-Authorization"] = basicCredentials(proxy.username, proxy.password ?? "");
    if (method === "OPTIONS" || method === "GET") h["Content-Length"] = "0";
    return new Promise((resolve, reject) => {
      const req = http.request({ method, path: forwardProxy ? url.href : `${url.pathname}${url.search}`, headers: h, agent: onceAgent(sock), setHost: false });
      const onAbort = () => { req.destroy(); reject(signal.reason); };
      signal.addEventListener("abort", onAbort, { once: true });
      req.once("response", (res) => { signal.removeEventListener("abort", onAbort); resolve(res); });
      req.once("error", (e) => { signal.removeEventListener("abort", onAbort); reject(e); });
      req.end();
    });
  }

  function judge(status: number, line: string, res: http.IncomingMessage, earlier: string[]): Outcome {
    const before = earlier.length ? `${earlier.join("; ")}; ` : "";
    const server = res.headers.server ? ` (Server: ${res.headers.server})` : "";
    if (status >= 200 && status < 300) return pass(`${before}${line}${server}`);
    if (status === 401) {
      const challenge = res.headers["www-authenticate"] ? ` (${res.headers["www-authenticate"]})` : "";
      throw new StepFailure(spec.auth
        ? `${before}${line}: the partner refused our credentials (${L.credentials})${challenge}`
        : `${before}${line}: the partner asks for credentials${challenge}; none are configured (${L.credentials})`);
    }
    if (status === 407) throw new StepFailure(`${before}${line}: the proxy ${proxy?.username !== undefined ? "refused our" : "wants"} credentials (${L.proxyCredentials})`);
    if (status === 403) throw new StepFailure(`${before}${line}: refused${secure && !clientCert.configured ? clientCertHint() : ""}`);
    if (status === 404) throw new StepFailure(`${before}${line}: nothing at ${url.pathname} on this server; check the URL`);
    if (status >= 300 && status < 400) {
      const to = res.headers.location ? ` to ${res.headers.location}` : "";
      if (spec.followRedirects) return warn(`${before}${line}${to}: as2 send follows it (${L.followRedirects})`);
      throw new StepFailure(`${before}${line}${to}: as2 send does not follow redirects (${L.followRedirects} is false); use the new URL`);
    }
    if (status >= 500) throw new StepFailure(`${before}${line}${server}: the partner's server reports a fault${forwardProxy ? ", or the proxy could not reach it" : ""}`);
    return warn(`${before}${line}: the server answers; an AS2 POST may be treated differently`);
  }
}
