/** Tables of video analysis and rendering (frame metrics, clips, …). */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface AnalysisTables {}
