export { systemChanges } from './plan';
export type { SystemAction, SystemChange, SystemSsh } from './plan';
export { diffClosures, parseStoreName, shortStorePath, sizesFromPathInfo, localClosureInfo, remoteClosureInfo } from './closure';
export type { ClosureDiff, ClosureInfo } from './closure';
export { planSummary, renderSummary, summarizeSystems, COMMENT_MARKER } from './summary';
export type { SummaryOptions, SystemSummary } from './summary';
