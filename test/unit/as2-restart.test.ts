/**
 * AS2 Restart's header rules (draft-harding-as2-restart-07; as2-reference E3-E5): the transfer's
 * entity tag (strong only, from ETag or If-Match), the POST's place in its message
 * (Content-Range, else the whole body), and the EDIINT-Features token.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { rangeOf, transferTag, withRestartFeature } from "../../src/jobs/receive/restart.js";

test("transferTag: a strong entity tag from ETag, else If-Match; never W/, a list or *", () => {
  assert.equal(transferTag({ etag: '"acme-20240101-0001"' }), '"acme-20240101-0001"');
  assert.equal(transferTag({ "if-match": ' "x1" ' }), '"x1"');
  assert.equal(transferTag({ etag: 'W/"weak"' }), undefined);
  assert.equal(transferTag({ "if-match": '"a", "b"' }), undefined);
  assert.equal(transferTag({ "if-match": "*" }), undefined);
  assert.equal(transferTag({ etag: "unquoted" }), undefined);
  assert.equal(transferTag({}), undefined);
});

test("rangeOf: E-8's Content-Range; the whole body without one; inconsistent ranges are problems", () => {
  const etag = '"acme-20240101-0001"';
  assert.deepEqual(rangeOf({ etag, "content-range": "bytes 65982464-307502442/307502443" }, 241519979), { etag, start: 65982464, total: 307502443 });
  assert.deepEqual(rangeOf({ etag }, 1000), { etag, start: 0, total: 1000 });
  assert.equal(rangeOf({ etag }, undefined), undefined, "no length, no range: not restartable");
  assert.equal(rangeOf({ "content-range": "bytes 0-9/10" }, 10), undefined, "no ETag: not a restart transfer");
  for (const [cr, len] of [["bytes 10-5/100", 0], ["bytes 0-100/100", 101], ["bytes 0-9/10", 9], ["bytes=0-9/10", 10], ["bytes 0-9/*", 10]] as const) {
    const r = rangeOf({ etag, "content-range": cr }, len);
    assert.ok(r && "problem" in r, `${cr} with Content-Length ${len} is a problem`);
  }
});

test("withRestartFeature: AS2-Restart added once, the other tokens kept in order", () => {
  assert.equal(withRestartFeature("AS2-Reliability"), "AS2-Reliability, AS2-Restart");
  assert.equal(withRestartFeature("multiple-attachments, CEM, AS2-Restart"), "multiple-attachments, CEM, AS2-Restart");
  assert.equal(withRestartFeature(undefined), "AS2-Restart");
});
