/** What `artdesc db copy --help` says after the options (cli.ts loads only this, not the copy itself). */
export const COPY_HELP = `
Stop every artdesc process that writes to DATABASE_URL first (start, daemon, worker, sync): rows
written during the copy make the verification fail. Progress goes to stderr, the verification (rows
and a content hash per table) to stdout. Every table is copied except leases and heartbeats, which
belong to the processes of the old deployment. Image files stay where they are: the new deployment's
IMAGE_DIR must point at the same folder (or a copy of it).

Interrupted (killed, a lost connection)? Run the same command again: it continues where it stopped.

Exit status: 0 copied and verified; 1 a table differs, or a row the target cannot hold;
2 a bad --to or --batch, or a database that cannot be opened; 3 the target is not empty, or is the source.`;
