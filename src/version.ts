/**
 * The package version. The CLI bundle (scripts/bundle-cli.mjs) writes it in as a constant, which
 * spares a file read at start-up and does not depend on where the bundle's files lie; the tsc
 * build in dist/ reads package.json next to dist/ once.
 */
import { readFileSync } from "node:fs";

declare const AS2KIT_BUNDLED_VERSION: string | undefined;

export const VERSION: string = typeof AS2KIT_BUNDLED_VERSION === "string"
  ? AS2KIT_BUNDLED_VERSION
  : (JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }).version;
