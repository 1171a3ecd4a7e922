/**
 * CEM documents (draft-meadors-certificate-exchange-14; as2-reference E7, E8): the XML request
 * (EDIINTCertificateExchangeRequest) and response (EDIINTCertificateExchangeResponse), built
 * with every value escaped and parsed with fast-xml-parser (no regexes over the document).
 *
 * The response schema and the tlsClient usage come from one implementation (Mendelson), not from
 * the draft's text (as2-reference §20): what we read is tolerant, what we write is the shape
 * shown in E7/E8.
 *
 * Hostile input is refused with an As2Error, never a crash: documents larger than
 * MAX_CEM_XML_BYTES, any DOCTYPE (entity definitions, so no entity expansion at all), XML that
 * is not well-formed, a wrong namespace or root, missing or malformed fields, too many
 * TrustRequests.
 */
import { XMLParser, XMLValidator } from "fast-xml-parser";
import { As2Error, ErrorCodes } from "../errors.js";

export const CEM_NAMESPACE = "urn:ietf:params:xml:ns:ediintcertificateexchange";
export const DS_NAMESPACE = "http://www.w3.org/2000/09/xmldsig#";
/** Content type of the XML part (E7) and of a response payload. */
export const CEM_XML_TYPE = "application/ediint-cert-exchange+xml";

/** A CEM document is a few KiB; anything near this is not one (and is not parsed). */
export const MAX_CEM_XML_BYTES = 256 * 1024;
/** One TrustRequest per usage: four usages, with room for a certificate chain's worth more. */
export const MAX_TRUST_ENTRIES = 16;

export const CERT_USAGES = ["keyEncipherment", "digitalSignature", "tlsServer", "tlsClient"] as const;
export type CertUsage = (typeof CERT_USAGES)[number];

export interface CertificateIdentifier {
  /** ds:X509IssuerName: the issuer's distinguished name (RFC 2253 order). */
  issuerName: string;
  /** ds:X509SerialNumber: the serial as a decimal integer (xsd:integer). */
  serialNumber: string;
}

export interface TrustRequest {
  usage: CertUsage;
  responseUrl: string;
  respondBy: Date;
  certificate: CertificateIdentifier;
  /** CertificateContentID: the Content-ID (without <>) of the part carrying the certificate. */
  contentId: string;
}

export interface CemRequest {
  requestId: string;
  /** TradingPartnerInfo/Name with qualifier "AS2": the requester's AS2 ID. */
  as2Name: string;
  originated?: Date;
  trustRequests: TrustRequest[];
}

export interface TrustResponse {
  status: "Accepted" | "Rejected";
  reason?: string;
  certificate: CertificateIdentifier;
}

export interface CemResponse {
  requestId: string;
  as2Name: string;
  originated?: Date;
  trustResponses: TrustResponse[];
}

// ---------------------------------------------------------------- building

/** Escapes text and attribute values (XML 1.0 §2.4, §3.3.3); control characters are refused. */
export function escapeXml(s: string): string {
  if (/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/.test(s)) throw new As2Error(ErrorCodes.INVALID_ARGUMENT, "a CEM value holds control characters, which XML 1.0 cannot carry");
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;").replace(/'/g, "&apos;");
}

const el = (name: string, text: string) => `<${name}>${escapeXml(text)}</${name}>`;

function tradingPartnerInfo(as2Name: string, originated: Date): string {
  return `  <TradingPartnerInfo>\n    <Name qualifier="AS2">${escapeXml(as2Name)}</Name>\n    ${el("MessageOriginated", originated.toISOString())}\n  </TradingPartnerInfo>\n`;
}

function identifier(tag: string, c: CertificateIdentifier, indent: string): string {
  return `${indent}<${tag}>\n${indent}  ${el("ds:X509IssuerName", c.issuerName)}\n${indent}  ${el("ds:X509SerialNumber", c.serialNumber)}\n${indent}</${tag}>\n`;
}

function root(name: string, requestId: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<${name} xmlns="${CEM_NAMESPACE}" xmlns:ds="${DS_NAMESPACE}" requestId="${escapeXml(requestId)}">\n`;
}

export function buildCemRequestXml(r: CemRequest): string {
  let xml = root("EDIINTCertificateExchangeRequest", r.requestId) + tradingPartnerInfo(r.as2Name, r.originated ?? new Date());
  for (const t of r.trustRequests) {
    xml += "  <TrustRequest>\n";
    xml += `    ${el("CertUsage", t.usage)}\n    ${el("ResponseURL", t.responseUrl)}\n    ${el("RespondByDate", t.respondBy.toISOString())}\n`;
    xml += "    <EndEntity>\n" + identifier("CertificateIdentifier", t.certificate, "      ") + `      ${el("CertificateContentID", t.contentId)}\n    </EndEntity>\n`;
    xml += "  </TrustRequest>\n";
  }
  return `${xml}</EDIINTCertificateExchangeRequest>\n`;
}

export function buildCemResponseXml(r: CemResponse): string {
  let xml = root("EDIINTCertificateExchangeResponse", r.requestId) + tradingPartnerInfo(r.as2Name, r.originated ?? new Date());
  for (const t of r.trustResponses) {
    xml += `  <TrustResponse>\n    ${el("CertStatus", t.status)}\n`;
    if (t.reason) xml += `    ${el("ReasonForRejection", t.reason)}\n`;
    xml += identifier("CertificateReference", t.certificate, "    ");
    xml += "  </TrustResponse>\n";
  }
  return `${xml}</EDIINTCertificateExchangeResponse>\n`;
}

// ---------------------------------------------------------------- parsing

type Node = Record<string, unknown>;

function bad(message: string): As2Error {
  return new As2Error(ErrorCodes.CEM_INVALID, `CEM: ${message}`);
}

/** The local part of a possibly prefixed name. */
const local = (key: string) => key.slice(key.indexOf(":") + 1);

/** The children of `node` whose local name is `name` (any namespace prefix). */
function children(node: Node, name: string): unknown[] {
  const out: unknown[] = [];
  for (const [k, v] of Object.entries(node)) {
    if (k.startsWith("@_") || local(k) !== name) continue;
    if (Array.isArray(v)) out.push(...v);
    else out.push(v);
  }
  return out;
}

function textOf(v: unknown): string | undefined {
  if (typeof v === "string") return v.trim();
  if (v && typeof v === "object" && typeof (v as Node)["#text"] === "string") return ((v as Node)["#text"] as string).trim();
  if (v && typeof v === "object" && Object.keys(v as Node).every((k) => k.startsWith("@_"))) return "";
  return undefined;
}

function one(node: Node, name: string, where: string): unknown {
  const found = children(node, name);
  if (found.length === 0) throw bad(`${where} has no ${name}`);
  if (found.length > 1) throw bad(`${where} has ${found.length} ${name} elements; one is allowed`);
  return found[0];
}

function text(node: Node, name: string, where: string, max = 4096): string {
  const t = textOf(one(node, name, where));
  if (t === undefined || t === "") throw bad(`${where}/${name} is empty or not text`);
  if (t.length > max) throw bad(`${where}/${name} is longer than ${max} characters`);
  return t;
}

function optionalText(node: Node, name: string, where: string): string | undefined {
  return children(node, name).length ? text(node, name, where) : undefined;
}

function object(v: unknown, where: string): Node {
  if (!v || typeof v !== "object" || Array.isArray(v)) throw bad(`${where} is not an element with content`);
  return v as Node;
}

function dateOf(s: string, where: string): Date {
  const d = new Date(s);
  if (!/^\d{4}-\d{2}-\d{2}T/.test(s) || Number.isNaN(d.getTime())) throw bad(`${where} is not an xsd:dateTime: ${JSON.stringify(s.slice(0, 64))}`);
  return d;
}

function certificateIdentifier(node: Node, where: string): CertificateIdentifier {
  const issuerName = text(node, "X509IssuerName", where);
  const serialNumber = text(node, "X509SerialNumber", where, 200);
  if (!/^-?\d+$/.test(serialNumber)) throw bad(`${where}/X509SerialNumber is not an integer`);
  return { issuerName, serialNumber: BigInt(serialNumber).toString() };
}

/** The document's root element: well-formed, no DOCTYPE, within the size limit, in the CEM namespace. */
function parseRoot(xml: Uint8Array | string): { name: string; node: Node } {
  const size = typeof xml === "string" ? Buffer.byteLength(xml) : xml.byteLength;
  if (size > MAX_CEM_XML_BYTES) throw new As2Error(ErrorCodes.LIMIT_EXCEEDED, `CEM: the XML document is ${size} bytes; at most ${MAX_CEM_XML_BYTES} are read`);
  const textDoc = typeof xml === "string" ? xml : Buffer.from(xml).toString("utf8");
  // A DOCTYPE is the only way to define entities (billion laughs, external entities): a CEM
  // document has no use for one, so none is read at all.
  if (textDoc.includes("<!DOCTYPE") || textDoc.includes("<!ENTITY")) throw bad("the XML document has a DOCTYPE or entity declaration, which CEM documents do not use; refused");
  const valid = XMLValidator.validate(textDoc);
  if (valid !== true) throw bad(`the XML is not well-formed: ${valid.err.msg} (line ${valid.err.line})`);
  const parser = new XMLParser({
    ignoreAttributes: false, attributeNamePrefix: "@_", removeNSPrefix: false, parseTagValue: false, parseAttributeValue: false,
    trimValues: true, processEntities: true, htmlEntities: false, ignoreDeclaration: true, ignorePiTags: true,
  });
  let doc: Node;
  try {
    doc = parser.parse(textDoc) as Node;
  } catch (e) {
    throw bad(`the XML cannot be parsed: ${(e as Error).message}`);
  }
  const roots = Object.keys(doc).filter((k) => !k.startsWith("?") && !k.startsWith("#"));
  if (roots.length !== 1) throw bad("the XML has no single root element");
  const key = roots[0]!;
  const node = object(doc[key], key);
  const prefix = key.includes(":") ? key.slice(0, key.indexOf(":")) : undefined;
  const ns = node[prefix ? `@_xmlns:${prefix}` : "@_xmlns"];
  if (ns !== CEM_NAMESPACE) throw bad(`the root element ${key} is not in the namespace ${CEM_NAMESPACE}`);
  return { name: local(key), node };
}

function requestIdOf(node: Node, where: string): string {
  const id = node["@_requestId"];
  if (typeof id !== "string" || !id.trim()) throw bad(`${where} has no requestId attribute`);
  if (id.length > 256 || /[^ -~]/.test(id)) throw bad(`${where}'s requestId must be at most 256 printable ASCII characters`);
  return id.trim();
}

function partnerInfo(node: Node, where: string): { as2Name: string; originated?: Date } {
  const info = object(one(node, "TradingPartnerInfo", where), `${where}/TradingPartnerInfo`);
  const names = children(info, "Name").map((n) => ({ q: n && typeof n === "object" ? (n as Node)["@_qualifier"] : undefined, t: textOf(n) }));
  const as2 = names.find((n) => n.q === "AS2") ?? (names.length === 1 ? names[0] : undefined);
  if (!as2?.t) throw bad(`${where}/TradingPartnerInfo has no Name with qualifier="AS2"`);
  const originated = optionalText(info, "MessageOriginated", `${where}/TradingPartnerInfo`);
  return { as2Name: as2.t, ...(originated ? { originated: dateOf(originated, "MessageOriginated") } : {}) };
}

/** The TrustRequest or TrustResponse elements of a document: at least one, at most MAX_TRUST_ENTRIES. */
function trustEntries(node: Node, element: "TrustRequest" | "TrustResponse", where: string): unknown[] {
  const list = children(node, element);
  if (list.length === 0) throw bad(`${where} has no ${element}`);
  if (list.length > MAX_TRUST_ENTRIES) throw bad(`${where} has ${list.length} ${element} elements; at most ${MAX_TRUST_ENTRIES} are taken`);
  return list;
}

/** What kind of CEM document this is, by its root element. */
export function cemDocumentKind(xml: Uint8Array | string): "request" | "response" {
  const { name } = parseRoot(xml);
  if (name === "EDIINTCertificateExchangeRequest") return "request";
  if (name === "EDIINTCertificateExchangeResponse") return "response";
  throw bad(`the root element ${name} is neither EDIINTCertificateExchangeRequest nor EDIINTCertificateExchangeResponse`);
}

export function parseCemRequestXml(xml: Uint8Array | string): CemRequest {
  const { name, node } = parseRoot(xml);
  if (name !== "EDIINTCertificateExchangeRequest") throw bad(`expected EDIINTCertificateExchangeRequest, got ${name}`);
  const where = name;
  const requestId = requestIdOf(node, where);
  const info = partnerInfo(node, where);
  const trustRequests = trustEntries(node, "TrustRequest", where).map((raw, i): TrustRequest => {
    const at = `TrustRequest[${i + 1}]`;
    const t = object(raw, at);
    const usage = text(t, "CertUsage", at);
    if (!(CERT_USAGES as readonly string[]).includes(usage)) throw bad(`${at}/CertUsage "${usage.slice(0, 40)}" is not one of ${CERT_USAGES.join(", ")}`);
    const responseUrl = text(t, "ResponseURL", at, 2048);
    if (!/^https?:\/\/\S+$/i.test(responseUrl)) throw bad(`${at}/ResponseURL is not an http(s) URL`);
    const respondBy = dateOf(text(t, "RespondByDate", at), `${at}/RespondByDate`);
    const ee = object(one(t, "EndEntity", at), `${at}/EndEntity`);
    const certificate = certificateIdentifier(object(one(ee, "CertificateIdentifier", `${at}/EndEntity`), `${at}/EndEntity/CertificateIdentifier`), `${at}/EndEntity/CertificateIdentifier`);
    const contentId = text(ee, "CertificateContentID", `${at}/EndEntity`, 998).replace(/^<|>$/g, "");
    return { usage: usage as CertUsage, responseUrl, respondBy, certificate, contentId };
  });
  return { requestId, ...info, trustRequests };
}

export function parseCemResponseXml(xml: Uint8Array | string): CemResponse {
  const { name, node } = parseRoot(xml);
  if (name !== "EDIINTCertificateExchangeResponse") throw bad(`expected EDIINTCertificateExchangeResponse, got ${name}`);
  const where = name;
  const requestId = requestIdOf(node, where);
  const info = partnerInfo(node, where);
  const trustResponses = trustEntries(node, "TrustResponse", where).map((raw, i): TrustResponse => {
    const at = `TrustResponse[${i + 1}]`;
    const t = object(raw, at);
    const status = text(t, "CertStatus", at);
    if (status !== "Accepted" && status !== "Rejected") throw bad(`${at}/CertStatus must be Accepted or Rejected, not "${status.slice(0, 40)}"`);
    const reason = optionalText(t, "ReasonForRejection", at);
    const certificate = certificateIdentifier(object(one(t, "CertificateReference", at), `${at}/CertificateReference`), `${at}/CertificateReference`);
    return { status, ...(reason ? { reason } : {}), certificate };
  });
  return { requestId, ...info, trustResponses };
}
