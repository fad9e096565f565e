// Prisma's WebAssembly query compiler runtimes ship without type declarations; the generated
// clients load them by these names. Only what src/store/query-plans.ts touches is declared.
declare module "@prisma/client/runtime/query_compiler_bg.sqlite.mjs" {
  export const QueryCompiler: import("./query-plans.js").QueryCompilerClass;
}
declare module "@prisma/client/runtime/query_compiler_bg.postgresql.mjs" {
  export const QueryCompiler: import("./query-plans.js").QueryCompilerClass;
}
