// compute-sanitizer racecheck reports, parsed and checked against the one hand-off analysed in bench/NOTES.md
// ("racecheck and the sm_90a raw stages"): a consumer warp's reads of a raw stage (load_a_fragments,
// dequantize_b, dequantize_b_row of an sm_90a GEMM) against the producer's TMA / bulk copies into the same stage for
// the K block kRawStages later. Those are ordered by the stage's raw_empty mbarrier (every lane reads, __syncwarp,
// lane 0 arrives with release semantics; the producer waits on the phase before issuing the copies); racecheck
// reports them once a CTA reuses a stage (a persistent CTA with more than kRawStages K blocks). Every other report
// stays a failure. The producer-decode GEMMs (templates/gemm_sm90_pd.cu.hbs) order the same hand-off by a named
// barrier of the decoder warpgroup (every decoder's reads of the stage, bar.sync, then its thread 0 issues the
// copies): their reader is decode_task. The pipelined ones (gemm_sm90_pdp.cu.hbs) order it by a raw_empty mbarrier
// (every decoder thread arrives once the registers it loaded from the stage are used; thread 0 waits on the phase):
// their reader is load_task; so are those of the cluster-shared B decode (gemm_sm90_pdc.cu.hbs), whose raw stages are
// per CTA. Its cross-CTA tile hand-offs (bench/NOTES.md "Issue 16: cluster-shared B decode (h-pd4)") are not accepted
// here: a record of them fails the suite and needs reading. The register-A kernel (gemm_sm90_pdr.cu.hbs) has both
// readers: its decoders read B in load_task, its consumer warps A in load_a_fragments (lane 0 arrives on the same
// raw_empty after __syncwarp, as in the consumer-decode kernels). Its consumers' scale-byte reads can be attributed by
// the line table to qgen_fp4_row_multipliers_x2, the inlined helper that consumes them (H100 run at a815b14: the
// consumer prologue's LDS.U8 of the A scale block at +0x890, issued before lane 0's raw_empty arrival, against the
// bulk copy that refills the stage): the same reader, so that helper is a reader name too.

/** One racecheck record: "Race reported between <first> access at <where> and <second> access at <where>". */
export interface RaceRecord {
  severity: 'Error' | 'Warning';
  first: { kind: 'Read' | 'Write'; at: string };
  second: { kind: 'Read' | 'Write'; at: string };
  hazards: number;
}

/** The records of a racecheck log (`--racecheck-report analysis`, the default), in order. */
export function parseRacecheck(log: string): RaceRecord[] {
  const lines = log.split('\n').map((l) => l.replace(/^=+\s*/, '').trim());
  const out: RaceRecord[] = [];
  for (let i = 0; i + 1 < lines.length; i++) {
    const head = /^(Error|Warning): Race reported between (Read|Write) access at (.+)$/.exec(lines[i]);
    if (!head) continue;
    const tail = /^and (Read|Write) access at (.+?)\s*\[(\d+) hazards?\]$/.exec(lines[i + 1]);
    if (!tail) continue;
    out.push({
      severity: head[1] as RaceRecord['severity'],
      first: { kind: head[2] as 'Read' | 'Write', at: head[3] },
      second: { kind: tail[1] as 'Read' | 'Write', at: tail[2] },
      hazards: Number(tail[3]),
    });
    i++;
  }
  return out;
}

/** A consumer read of an sm_90a GEMM raw stage (the functions of templates/gemm_sm90.cu.hbs, gemm_sm90_swap.cu.hbs
 * and gemm_sm90_pd.cu.hbs that read it, and the row decoder of runtime/qgen_fp4_bf16.cuh they inline). */
const RAW_STAGE_READERS = [
  'load_a_fragments',
  'dequantize_b_row',
  'dequantize_b',
  'load_w_fragments',
  'dequantize_x',
  'qgen_fp4_dequantize_row_sw128',
  'qgen_fp4_row_multipliers_x2',
  'decode_task',
  'load_task',
];
const RAW_STAGE_READER = new RegExp(
  `\\b(${RAW_STAGE_READERS.join('|')})(<[^>]*>)?\\(.* in \\S*\\b(gemm_\\w+\\.cu|qgen_fp4_bf16\\.cuh):\\d+$`,
);
/** The producer's copies into a raw stage (issue_loads and the qgen_async.cuh helpers it inlines). */
const RAW_STAGE_COPY = /\b(issue_loads|qgen_tma_load_2d|qgen_bulk_load)\(/;

/** Whether a record is the raw-stage reuse hand-off of bench/NOTES.md: a consumer read against a producer copy. */
export function isRawStageReuse(r: RaceRecord): boolean {
  const [read, write] = r.first.kind === 'Read' ? [r.first, r.second] : [r.second, r.first];
  return (
    read.kind === 'Read' && write.kind === 'Write' && RAW_STAGE_READER.test(read.at) && RAW_STAGE_COPY.test(write.at)
  );
}

export interface RacecheckVerdict {
  ok: boolean;
  records: RaceRecord[];
  analysed: number;
  summary: string;
  lines: string[];
}

/**
 * The verdict on a racecheck log. `displayed`: the N of "RACECHECK SUMMARY: N hazards displayed" (null when the log
 * has none). Passes when the summary is there, every displayed record was parsed and each is the analysed hand-off.
 */
export function judgeRacecheck(log: string): RacecheckVerdict {
  const m = /RACECHECK SUMMARY: (\d+) hazards? displayed/.exec(log);
  const displayed = m ? Number(m[1]) : null;
  const records = parseRacecheck(log);
  const analysed = records.filter(isRawStageReuse).length;
  const lines = records.map(
    (r) =>
      `${isRawStageReuse(r) ? 'analysed' : 'NOT analysed'}: ${r.severity}, ` +
      `${r.first.kind} at ${r.first.at} / ${r.second.kind} at ${r.second.at} [${r.hazards} hazards]`,
  );
  const ok = displayed !== null && displayed === records.length && analysed === records.length;
  const summary =
    displayed === null
      ? 'no summary'
      : displayed === 0
        ? 'clean (0 hazards)'
        : `${displayed} reports, ${analysed} analysed as raw-stage reuse ordered by the raw_empty mbarrier ` +
          `(bench/NOTES.md)${ok ? '' : `, ${displayed - analysed} NOT analysed`}`;
  return { ok, records, analysed, summary, lines };
}
