/** Public surface of state/: the durable state directory, its journals and documents, and atomic file writes. */
export { openStateDir } from './state-dir.js'
export type { StateDir, StateDocument } from './state-dir.js'
export type { Journal, JournalRecord, JournalReplay, ReplayOptions } from './journal.js'
export { readFileIfExists, writeFileAtomic } from './atomic-file.js'
export type { WriteFileAtomicOptions } from './atomic-file.js'
export { StateError, StateErrorCode } from './state-error.js'
