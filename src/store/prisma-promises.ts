/**
 * What Prisma 6.19 passes a PrismaPromise's callback: nothing outside a transaction, a batch
 * transaction's slot inside `$transaction([...])`, or an interactive transaction.
 */
interface PromiseTransaction {
  kind: string;
}

type Callback = (transaction?: PromiseTransaction) => unknown;

/** What a callback's result may be: a promise, or another PrismaPromise (a query extension's). */
type MaybeLazy = PromiseLike<unknown> & { requestTransaction?: LazyPromise["requestTransaction"] };

interface LazyPromise extends PromiseLike<unknown> {
  readonly spec: unknown;
  catch(onRejected?: (reason: unknown) => unknown): Promise<unknown>;
  finally(onFinally?: () => void): Promise<unknown>;
  requestTransaction(transaction: PromiseTransaction): PromiseLike<unknown>;
  readonly [Symbol.toStringTag]: "PrismaPromise";
}

/**
 * Prisma's PrismaPromise factory (createPrismaPromise.ts in @prisma/client 6.19) with one line
 * changed: `spec` is a plain property instead of a getter.
 *
 * The getter (`get spec() { return op }`) closes over the call's variables, which include the
 * promise of the call's result. V8 puts each getter of an object literal in an AccessorPair, and
 * allocates every AccessorPair in the old generation. So each call leaves an old object pointing
 * to its young result, and the scavenger takes such a pointer as a root until the next
 * mark-compact: every row a query returned was copied and then promoted into the old heap (about
 * 23 kB per findMany of 10 artworks; 2 kB with a plain property), and the young generation's
 * pauses grew with it. See BENCHMARKS.md, "What every Prisma call left for the collector".
 */
function createPrismaPromiseFactory(transaction?: PromiseTransaction) {
  return function createPrismaPromise(callback: Callback, spec?: unknown): LazyPromise {
    let promise: PromiseLike<unknown> | undefined;
    const run = (callbackTransaction = transaction): MaybeLazy => {
      try {
        // Run once outside a transaction or in an interactive one; a batch may run it again.
        if (callbackTransaction === undefined || callbackTransaction.kind === "itx") return (promise ??= asPromise(callback(callbackTransaction)));
        return asPromise(callback(callbackTransaction));
      } catch (err) {
        return Promise.reject(err);
      }
    };
    return {
      spec,
      then: (onFulfilled, onRejected) => run().then(onFulfilled, onRejected),
      catch: (onRejected) => Promise.resolve(run()).catch(onRejected),
      finally: (onFinally) => Promise.resolve(run()).finally(onFinally),
      requestTransaction(batchTransaction) {
        const inner = run(batchTransaction);
        return inner.requestTransaction ? inner.requestTransaction(batchTransaction) : inner;
      },
      [Symbol.toStringTag]: "PrismaPromise",
    };
  };
}

/** A thenable as it is (a nested PrismaPromise must stay one), anything else resolved. */
function asPromise(value: unknown): MaybeLazy {
  return typeof (value as PromiseLike<unknown> | null)?.then === "function" ? (value as MaybeLazy) : Promise.resolve(value);
}

/**
 * Gives a Prisma client the factory above for every query made outside an interactive transaction
 * (inside one, Prisma builds the transaction's client and its factory itself). Throws if the client
 * no longer has the field this relies on, so that a Prisma upgrade that moves it fails loudly.
 */
export function usePlainPrismaPromises(client: object): void {
  const fields = client as { _createPrismaPromise?: unknown };
  if (typeof fields._createPrismaPromise !== "function") {
    throw new Error("this Prisma client has no _createPrismaPromise: src/store/prisma-promises.ts was written for @prisma/client 6.19 and needs a look");
  }
  fields._createPrismaPromise = createPrismaPromiseFactory();
}
