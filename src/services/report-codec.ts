/**
 * Accepted measurement reports as journal records: compact arrays of text
 * and numbers (a report is about 60 bytes of JSON), decoded through the same
 * parsers that accepted them. Client prefixes are stored already reduced, so
 * raw client addresses never reach the disk (DESIGN.md).
 */
import { formatClientPrefix, parseResolverAddress, reduceClient } from '../measure/index.js'
import type { AcceptedReport, PrefixPolicy } from '../measure/index.js'
import { formatAddress } from '../steering/index.js'

/** [client prefix, resolver or "", target id, rttMs, atMs, ok ? 1 : 0] */
export type EncodedReport = readonly [string, string, string, number, number, 0 | 1]

/** One journal record: the accepted reports of one batch. */
export interface ReportBatchRecord {
  readonly r: readonly EncodedReport[]
}

export function encodeReports(reports: readonly AcceptedReport[], targetId: (index: number) => string): ReportBatchRecord {
  return {
    r: reports.map((report) => [
      formatClientPrefix(report.client),
      report.resolver ? formatAddress(report.resolver) : '',
      targetId(report.target),
      report.rttMs,
      report.atMs,
      report.ok ? 1 : 0,
    ]),
  }
}

/**
 * Reports of a journal record. A report naming a target the configuration no
 * longer has is skipped and counted: the journal outlives config changes.
 */
export function decodeReports(record: ReportBatchRecord, policy: PrefixPolicy, targetIndex: (id: string) => number | undefined): { reports: AcceptedReport[]; skipped: number } {
  const reports: AcceptedReport[] = []
  let skipped = 0
  for (const [clientText, resolverText, id, rttMs, atMs, ok] of record.r) {
    const client = reduceClient(clientText, policy)
    const resolver = resolverText === '' ? undefined : parseResolverAddress(resolverText)
    const target = targetIndex(id)
    if (typeof client === 'string' || typeof resolver === 'string' || target === undefined) {
      skipped++
      continue
    }
    reports.push({ client, resolver, target, rttMs, atMs, ok: ok === 1 })
  }
  return { reports, skipped }
}
