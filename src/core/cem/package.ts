/**
 * The CEM payloads (as2-reference E7, E8): a request is `multipart/related;
 * type="application/ediint-cert-exchange+xml"` with the XML first and, per certificate, a part
 * whose Content-ID is the XML's CertificateContentID holding a certs-only PKCS#7
 * (`application/pkcs7-mime; smime-type=certs-only`, RFC 5751 §3.6, .p7c). A response is the XML
 * alone (`application/ediint-cert-exchange+xml`); a response wrapped in multipart/related is
 * read too (its first part). Built and read with the MIME helpers of ../mime, in memory: CEM
 * documents are small and limited (MAX_CEM_PAYLOAD_BYTES).
 */
import * as pkijs from "pkijs";
import { As2Error, ErrorCodes } from "../errors.js";
import { Certificate, certsFromPkcs7, loadCertificates } from "../certs/certificate.js";
import { checkBoundary, decodeTransfer, encodeBase64Lines, formatParameterized, parseContentType, parseEntityBytes, parseTransferEncoding, splitMultipart } from "../mime/index.js";
import { OID } from "../cms/oids.js";
import { CEM_XML_TYPE, buildCemRequestXml, cemDocumentKind, parseCemRequestXml, parseCemResponseXml, type CemRequest, type CemResponse, type CertificateIdentifier } from "./xml.js";

/** A CEM payload: the XML plus one certificate (a chain's worth at most): far below this. */
export const MAX_CEM_PAYLOAD_BYTES = 1024 * 1024;
export const MAX_CEM_PARTS = 16;

/** Whether a payload's Content-Type is a CEM document (request or response), as2-reference E7. */
export function isCemContentType(contentType: string): boolean {
  const ct = parseContentType(contentType);
  if (ct.mediaType === CEM_XML_TYPE) return true;
  return ct.mediaType === "multipart/related" && (ct.params.type ?? "").toLowerCase() === CEM_XML_TYPE;
}

/** ds:X509IssuerName / ds:X509SerialNumber of a certificate: RFC 2253 order (last RDN first), decimal serial. */
export function certificateIdentifierOf(cert: Certificate): CertificateIdentifier {
  const rdns = (cert.x509.issuer ?? "").split("\n").filter(Boolean).reverse();
  return { issuerName: rdns.map((r) => r.replace(/([,+"\\<>;])/g, "\\$1")).join(","), serialNumber: BigInt(`0x${cert.serialHex}`).toString() };
}

/** Same certificate named? Serial numbers compare as integers; issuer names without spaces and case. */
export function sameIdentifier(a: CertificateIdentifier, b: CertificateIdentifier): boolean {
  const norm = (s: string) => s.replace(/\s+/g, "").toLowerCase();
  return BigInt(a.serialNumber) === BigInt(b.serialNumber) && norm(a.issuerName) === norm(b.issuerName);
}

/** A certs-only SignedData (RFC 5751 §3.6): no signers, no content, only the certificates. */
export function buildCertsOnly(certs: Certificate[]): Buffer {
  const sd = new pkijs.SignedData({
    version: 1,
    encapContentInfo: new pkijs.EncapsulatedContentInfo({ eContentType: OID.data }),
    digestAlgorithms: [],
    signerInfos: [],
    certificates: certs.map((c) => c.pkijs),
  });
  const ci = new pkijs.ContentInfo({ contentType: OID.signedData, content: sd.toSchema(true) });
  return Buffer.from(ci.toSchema().toBER(false));
}

export interface BuiltCemPayload {
  /** The payload entity's Content-Type (with boundary and type). */
  contentType: string;
  /** The payload body (the multipart body, or the XML). */
  body: Buffer;
}

/** The request: XML part + one certs-only part per certificate named in it (E7). */
export function buildCemRequestPayload(request: CemRequest, certificates: Map<string, Certificate>, boundary: string): BuiltCemPayload {
  checkBoundary(boundary);
  const xml = buildCemRequestXml(request);
  const xmlId = `${request.requestId.replace(/[^A-Za-z0-9._-]/g, "_")}.xml@as2kit`;
  let body = `--${boundary}\r\nContent-Type: ${CEM_XML_TYPE}; charset=utf-8\r\nContent-ID: <${xmlId}>\r\n\r\n${xml}\r\n`;
  const ids = new Set(request.trustRequests.map((t) => t.contentId));
  for (const id of ids) {
    const cert = certificates.get(id);
    if (!cert) throw new As2Error(ErrorCodes.INVALID_ARGUMENT, `CEM: no certificate for CertificateContentID ${id}`);
    body += `--${boundary}\r\nContent-Type: application/pkcs7-mime; smime-type=certs-only; name=cert.p7c\r\nContent-Transfer-Encoding: base64\r\n`
      + `Content-Disposition: attachment; filename=cert.p7c\r\nContent-ID: <${id}>\r\n\r\n${encodeBase64Lines(buildCertsOnly([cert]))}\r\n`;
  }
  body += `--${boundary}--\r\n`;
  return {
    contentType: formatParameterized("multipart/related", { boundary, type: CEM_XML_TYPE, start: `<${xmlId}>` }, ["boundary", "type", "start"]),
    body: Buffer.from(body, "utf8"),
  };
}

export function buildCemResponsePayload(xml: string): BuiltCemPayload {
  return { contentType: `${CEM_XML_TYPE}; charset=utf-8`, body: Buffer.from(xml, "utf8") };
}

export type OpenedCem =
  | { kind: "request"; request: CemRequest; xml: string; certificates: Map<string, Certificate> }
  | { kind: "response"; response: CemResponse; xml: string };

interface Part { contentType: string; contentId?: string; body: Buffer }

function partsOf(contentType: string, body: Buffer): Part[] {
  const ct = parseContentType(contentType);
  if (ct.mediaType !== "multipart/related") return [{ contentType, body }];
  const raw = splitMultipart(body, checkBoundary(ct.params.boundary));
  if (raw.length === 0) throw new As2Error(ErrorCodes.CEM_INVALID, "CEM: the multipart/related payload has no parts");
  if (raw.length > MAX_CEM_PARTS) throw new As2Error(ErrorCodes.CEM_INVALID, `CEM: the payload has ${raw.length} parts; at most ${MAX_CEM_PARTS} are read`);
  const parts = raw.map((p): Part => {
    const e = parseEntityBytes(p.raw);
    const id = e.headers.get("content-id")?.trim().replace(/^<|>$/g, "");
    return { contentType: e.headers.get("content-type") ?? "text/plain", ...(id ? { contentId: id } : {}), body: decodeTransfer(e.body, parseTransferEncoding(e.headers.get("content-transfer-encoding"))) };
  });
  // RFC 2387 §3.2: the root is the part named by `start`, else the first.
  const start = ct.params.start?.trim().replace(/^<|>$/g, "");
  const rootIndex = start ? parts.findIndex((p) => p.contentId === start) : 0;
  if (rootIndex < 0) throw new As2Error(ErrorCodes.CEM_INVALID, `CEM: no part has the start Content-ID <${start}>`);
  return [parts[rootIndex]!, ...parts.filter((_, i) => i !== rootIndex)];
}

/** Reads a received CEM payload (its Content-Type and decoded body); throws As2Error (CEM_INVALID, LIMIT_EXCEEDED) for anything malformed or hostile. */
export function openCemPayload(contentType: string, body: Buffer): OpenedCem {
  if (body.length > MAX_CEM_PAYLOAD_BYTES) throw new As2Error(ErrorCodes.LIMIT_EXCEEDED, `CEM: the payload is ${body.length} bytes; at most ${MAX_CEM_PAYLOAD_BYTES} are read`);
  let parts: Part[];
  try {
    parts = partsOf(contentType, body);
  } catch (e) {
    if (e instanceof As2Error && e.code !== ErrorCodes.MALFORMED_MIME) throw e;
    throw new As2Error(ErrorCodes.CEM_INVALID, `CEM: the payload is not readable MIME: ${(e as Error).message}`, { cause: e });
  }
  const [root, ...rest] = parts;
  if (parseContentType(root!.contentType).mediaType !== CEM_XML_TYPE) throw new As2Error(ErrorCodes.CEM_INVALID, `CEM: the root part is ${root!.contentType}, not ${CEM_XML_TYPE}`);
  const xml = root!.body.toString("utf8");
  if (cemDocumentKind(root!.body) === "response") return { kind: "response", response: parseCemResponseXml(root!.body), xml };
  const request = parseCemRequestXml(root!.body);
  const certificates = new Map<string, Certificate>();
  for (const t of request.trustRequests) {
    if (certificates.has(t.contentId)) continue;
    const part = rest.find((p) => p.contentId === t.contentId);
    if (!part) throw new As2Error(ErrorCodes.CEM_INVALID, `CEM: no part has the Content-ID <${t.contentId}> named by CertificateContentID`);
    let certs: Certificate[];
    try {
      certs = parseContentType(part.contentType).mediaType === "application/pkcs7-mime" ? certsFromPkcs7(part.body) : loadCertificates(part.body);
    } catch (e) {
      throw new As2Error(ErrorCodes.CEM_INVALID, `CEM: the part <${t.contentId}> holds no readable certificate: ${(e as Error).message}`, { cause: e });
    }
    // The end-entity certificate is the one the identifier names; a chain may come with it.
    const named = certs.find((c) => sameIdentifier(certificateIdentifierOf(c), t.certificate)) ?? certs.find((c) => BigInt(`0x${c.serialHex}`) === BigInt(t.certificate.serialNumber));
    if (!named) throw new As2Error(ErrorCodes.CEM_INVALID, `CEM: the part <${t.contentId}> has no certificate with serial ${t.certificate.serialNumber} of ${t.certificate.issuerName}`);
    certificates.set(t.contentId, named);
  }
  return { kind: "request", request, xml, certificates };
}
