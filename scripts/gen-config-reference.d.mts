// Types for scripts/gen-config-reference.mjs (imported by test/config/reference.test.ts).
export declare const START: string;
export declare const END: string;
export declare const HEADING: string;
export interface ConfigReferenceRow { path: string; type: string; default: string; description: string }
export declare function configReferenceRows(schema: Record<string, unknown>): ConfigReferenceRow[];
export declare function renderConfigReference(schema: Record<string, unknown>): string;
export declare function replaceConfigReference(readme: string, body: string): string;
export declare function currentConfigReference(readme: string): string | undefined;
