/**
 * A running as2 receive picks up partner certificates changed in the configuration file without
 * a restart (issue 17): an accepted CEM request edits the file, possibly from another process
 * (`as2 cem accept`). Before each message is verified the file is stat()ed (microseconds); when
 * its mtime, size or inode changed, the partners' certificate keys (certificate,
 * encryptionCertificate, signatureCertificates, cem) are read again and swapped in. A file that
 * does not load (a hand edit half done) keeps the certificates in force and says so once.
 * Only certificates are taken over: other settings still need a restart, as before.
 */
import { stat } from "node:fs/promises";
import { statSync } from "node:fs";
import { loadConfig } from "../../config/load.js";
import { loadKeyMaterial, type KeyMaterial } from "../../config/keys.js";
import type { As2Config } from "../../config/schema.js";

function signature(st: { mtimeMs: number; size: number; ino: number }): string {
  return `${st.mtimeMs}:${st.size}:${st.ino}`;
}

export function certificateReloader(configPath: string, config: As2Config, keys: KeyMaterial, now: () => Date, warn: (text: string) => void): () => Promise<void> {
  let seen: string | undefined;
  try {
    seen = signature(statSync(configPath));
  } catch { /* not there now: the first check reads it */ }
  let running: Promise<void> | undefined;
  const check = async (): Promise<void> => {
    let sig: string;
    try {
      sig = signature(await stat(configPath));
    } catch {
      return;
    }
    if (sig === seen) return;
    seen = sig;
    try {
      const fresh = (await loadConfig({ configPath, env: process.env })).config;
      const names = Object.keys(config.partners).filter((n) => fresh.partners[n]);
      const material = loadKeyMaterial(fresh, now(), names);
      for (const n of names) {
        const p = config.partners[n]!;
        const f = fresh.partners[n]!;
        p.certificate = f.certificate;
        p.encryptionCertificate = f.encryptionCertificate;
        p.signatureCertificates = f.signatureCertificates;
        p.cem = f.cem;
        keys.partners[n] = material.partners[n]!;
      }
    } catch (e) {
      warn(`the configuration file changed, but its certificates could not be read again (the ones in force stay): ${(e as Error).message}`);
    }
  };
  // One reload at a time: concurrent messages wait for the same one.
  return () => (running ??= check().finally(() => { running = undefined; }));
}
