;; Exact dot products of one query with every row of a float32 matrix, four elements at a time.
;;
;; scan(matrix, rows, dims, query, out): out[r] = the dot product of row r (float32, `dims` per
;; row, rows back to back from `matrix`) with the query (float64: each float32 query element
;; widened). It computes exactly what vector-index.ts's JavaScript `dot` computes: four float64
;; running sums (elements j = 0, 1, 2, 3 mod 4; the remainder past the last multiple of 4 goes
;; to the first), each product exact in float64 (two float32 values), added in element order,
;; and the four sums added left to right. f64x2 lanes keep sums 0 and 1 (a) and 2 and 3 (b);
;; WebAssembly never fuses a multiply with an add, so every result is bit for bit the same.
;;
;; Compiled by `npm run build:wasm` (wabt) into dot-scan-wasm.ts; test/embed/dot-scan.test.ts
;; checks that the committed bytes are this text compiled.
(module
  (memory (export "memory") 1)
  (func (export "scan") (param $matrix i32) (param $rows i32) (param $dims i32) (param $query i32) (param $out i32)
    (local $r i32) (local $j i32) (local $n4 i32) (local $row i32) (local $v v128) (local $a v128) (local $b v128) (local $s0 f64)
    (local.set $n4 (i32.and (local.get $dims) (i32.const -4)))
    (local.set $row (local.get $matrix))
    (block $rows_done
      (loop $each_row
        (br_if $rows_done (i32.ge_u (local.get $r) (local.get $rows)))
        (local.set $a (v128.const f64x2 0 0))
        (local.set $b (v128.const f64x2 0 0))
        (local.set $j (i32.const 0))
        (block $fours_done
          (loop $each_four
            (br_if $fours_done (i32.ge_u (local.get $j) (local.get $n4)))
            (local.set $v (v128.load align=4 (i32.add (local.get $row) (i32.shl (local.get $j) (i32.const 2)))))
            (local.set $a
              (f64x2.add (local.get $a)
                (f64x2.mul
                  (f64x2.promote_low_f32x4 (local.get $v))
                  (v128.load align=8 (i32.add (local.get $query) (i32.shl (local.get $j) (i32.const 3)))))))
            (local.set $b
              (f64x2.add (local.get $b)
                (f64x2.mul
                  (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $v) (local.get $v)))
                  (v128.load offset=16 align=8 (i32.add (local.get $query) (i32.shl (local.get $j) (i32.const 3)))))))
            (local.set $j (i32.add (local.get $j) (i32.const 4)))
            (br $each_four)))
        (local.set $s0 (f64x2.extract_lane 0 (local.get $a)))
        (block $rest_done
          (loop $each_rest
            (br_if $rest_done (i32.ge_u (local.get $j) (local.get $dims)))
            (local.set $s0
              (f64.add (local.get $s0)
                (f64.mul
                  (f64.promote_f32 (f32.load (i32.add (local.get $row) (i32.shl (local.get $j) (i32.const 2)))))
                  (f64.load (i32.add (local.get $query) (i32.shl (local.get $j) (i32.const 3)))))))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (br $each_rest)))
        (f64.store (i32.add (local.get $out) (i32.shl (local.get $r) (i32.const 3)))
          (f64.add
            (f64.add
              (f64.add (local.get $s0) (f64x2.extract_lane 1 (local.get $a)))
              (f64x2.extract_lane 0 (local.get $b)))
            (f64x2.extract_lane 1 (local.get $b))))
        (local.set $row (i32.add (local.get $row) (i32.shl (local.get $dims) (i32.const 2))))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $each_row)))))
