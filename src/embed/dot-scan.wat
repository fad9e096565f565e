;; Dot products of one query with every row of a float32 matrix, in float32, eight elements at a time.
;;
;; scan(matrix, rows, dims, query, out): out[r] = the dot product of row r (float32, `dims` per
;; row, rows back to back from `matrix`) with the query (float32), as a float32. It computes
;; exactly what vector-index.ts's JavaScript `dot` computes: eight float32 running sums (element j
;; goes to sum j mod 8, for j below the last multiple of 8), each product and each addition
;; rounded to float32; then sums k and k + 4 added (k = 0..3), those four added left to right,
;; and the remaining elements past the last multiple of 8 added to that one by one. f32x4 lanes
;; keep sums 0–3 (a) and 4–7 (b); WebAssembly never fuses a multiply with an add and rounds every
;; float32 operation to nearest, so every result is bit for bit the same. Float32 sums halve the
;; work of float64 ones (0.8 ms instead of 1.5 ms for 20,000 rows of 384): the scan reads the
;; matrix about as fast as memory gives it.
;;
;; scan_i8(matrix, rows, width, query, out): out[r] = the exact integer dot product (int32) of row
;; r of an int8 matrix (`width` bytes per row, a multiple of 16, rows back to back) with an int16
;; query of `width` elements. The caller keeps every sum within int32 (|row| <= 127, and the
;; query's largest magnitude at most (2^31 - 1) / (127 * width)). vector-index.ts uses it as a
;; prefilter: a quarter of the bytes of the float32 matrix, scored in a third of the time, then
;; the few rows that can still be among the nearest are scored exactly with `scan`.
;;
;; Compiled by `npm run build:wasm` (wabt) into dot-scan-wasm.ts; test/embed/dot-scan.test.ts
;; checks that the committed bytes are this text compiled.
(module
  (memory (export "memory") 1)
  (func (export "scan") (param $matrix i32) (param $rows i32) (param $dims i32) (param $query i32) (param $out i32)
    (local $r i32) (local $j i32) (local $n8 i32) (local $row i32) (local $a v128) (local $b v128) (local $s f32)
    (local.set $n8 (i32.and (local.get $dims) (i32.const -8)))
    (local.set $row (local.get $matrix))
    (block $rows_done
      (loop $each_row
        (br_if $rows_done (i32.ge_u (local.get $r) (local.get $rows)))
        (local.set $a (v128.const f32x4 0 0 0 0))
        (local.set $b (v128.const f32x4 0 0 0 0))
        (local.set $j (i32.const 0))
        (block $eights_done
          (loop $each_eight
            (br_if $eights_done (i32.ge_u (local.get $j) (local.get $n8)))
            (local.set $a
              (f32x4.add (local.get $a)
                (f32x4.mul
                  (v128.load align=4 (i32.add (local.get $row) (i32.shl (local.get $j) (i32.const 2))))
                  (v128.load align=4 (i32.add (local.get $query) (i32.shl (local.get $j) (i32.const 2)))))))
            (local.set $b
              (f32x4.add (local.get $b)
                (f32x4.mul
                  (v128.load offset=16 align=4 (i32.add (local.get $row) (i32.shl (local.get $j) (i32.const 2))))
                  (v128.load offset=16 align=4 (i32.add (local.get $query) (i32.shl (local.get $j) (i32.const 2)))))))
            (local.set $j (i32.add (local.get $j) (i32.const 8)))
            (br $each_eight)))
        (local.set $a (f32x4.add (local.get $a) (local.get $b)))
        (local.set $s
          (f32.add
            (f32.add
              (f32.add (f32x4.extract_lane 0 (local.get $a)) (f32x4.extract_lane 1 (local.get $a)))
              (f32x4.extract_lane 2 (local.get $a)))
            (f32x4.extract_lane 3 (local.get $a))))
        (block $rest_done
          (loop $each_rest
            (br_if $rest_done (i32.ge_u (local.get $j) (local.get $dims)))
            (local.set $s
              (f32.add (local.get $s)
                (f32.mul
                  (f32.load (i32.add (local.get $row) (i32.shl (local.get $j) (i32.const 2))))
                  (f32.load (i32.add (local.get $query) (i32.shl (local.get $j) (i32.const 2)))))))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (br $each_rest)))
        (f32.store (i32.add (local.get $out) (i32.shl (local.get $r) (i32.const 2))) (local.get $s))
        (local.set $row (i32.add (local.get $row) (i32.shl (local.get $dims) (i32.const 2))))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $each_row))))
  (func (export "scan_i8") (param $matrix i32) (param $rows i32) (param $width i32) (param $query i32) (param $out i32)
    (local $r i32) (local $j i32) (local $row i32) (local $v v128) (local $a v128) (local $b v128)
    (local.set $row (local.get $matrix))
    (block $rows_done
      (loop $each_row
        (br_if $rows_done (i32.ge_u (local.get $r) (local.get $rows)))
        (local.set $a (v128.const i32x4 0 0 0 0))
        (local.set $b (v128.const i32x4 0 0 0 0))
        (local.set $j (i32.const 0))
        (block $sixteens_done
          (loop $each_sixteen
            (br_if $sixteens_done (i32.ge_u (local.get $j) (local.get $width)))
            (local.set $v (v128.load align=1 (i32.add (local.get $row) (local.get $j))))
            (local.set $a
              (i32x4.add (local.get $a)
                (i32x4.dot_i16x8_s
                  (i16x8.extend_low_i8x16_s (local.get $v))
                  (v128.load align=2 (i32.add (local.get $query) (i32.shl (local.get $j) (i32.const 1)))))))
            (local.set $b
              (i32x4.add (local.get $b)
                (i32x4.dot_i16x8_s
                  (i16x8.extend_high_i8x16_s (local.get $v))
                  (v128.load offset=16 align=2 (i32.add (local.get $query) (i32.shl (local.get $j) (i32.const 1)))))))
            (local.set $j (i32.add (local.get $j) (i32.const 16)))
            (br $each_sixteen)))
        (local.set $a (i32x4.add (local.get $a) (local.get $b)))
        (i32.store (i32.add (local.get $out) (i32.shl (local.get $r) (i32.const 2)))
          (i32.add
            (i32.add (i32x4.extract_lane 0 (local.get $a)) (i32x4.extract_lane 1 (local.get $a)))
            (i32.add (i32x4.extract_lane 2 (local.get $a)) (i32x4.extract_lane 3 (local.get $a)))))
        (local.set $row (i32.add (local.get $row) (local.get $width)))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $each_row))))
)
