// Run by test/ops/allocator.test.ts: prints what it runs under, restarts itself under the tuned allocator, prints again.
import { restartWithTunedAllocator } from "../../src/ops/allocator.js";

const line = (stage: string) =>
  console.log([stage, process.pid, process.env.MALLOC_MMAP_THRESHOLD_ ?? "-", process.env.MALLOC_TRIM_THRESHOLD_ ?? "-", ...process.argv.slice(2)].join(" "));
line("before");
restartWithTunedAllocator(process.env.ALLOCATOR_TEST_EXEC_PATH);
line("after");
