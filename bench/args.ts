/** Command-line flags of the benchmark scripts: `--name value`. */
export function benchArgs(argv: string[] = process.argv.slice(2)) {
  const text = (name: string, fallback: string): string => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 && argv[i + 1] ? argv[i + 1]! : fallback;
  };
  /** A whole number of at least `min`; anything else stops the script with a message naming the flag. */
  const count = (name: string, fallback: number, min = 1): number => {
    const raw = text(name, String(fallback));
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min) {
      console.error(`--${name} must be a whole number of at least ${min} (got ${JSON.stringify(raw)})`);
      process.exit(2);
    }
    return n;
  };
  return { text, count };
}
