export function compileDotScan(): Promise<Buffer>;
export function dotScanSource(bytes: Buffer): string;
