/** The protocol core: pure functions over bytes and streams (no fs, http, process or CLI). */
export * from "./errors.js";
export * from "./bytes.js";
export * from "./streams.js";
export * from "./ber/index.js";
export * from "./mime/index.js";
export * from "./cms/oids.js";
export * from "./cms/digests.js";
export * from "./cms/ciphers.js";
export * from "./cms/signed.js";
export * from "./cms/enveloped.js";
export * from "./cms/compressed.js";
export * from "./certs/index.js";
export * from "./message/as2-name.js";
export * from "./message/build.js";
export * from "./message/open.js";
export * from "./mdn/index.js";
export * from "./parallel-hash.js";
