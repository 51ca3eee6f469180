// Names the UI uses for the generated API schemas (one place to adapt when the spec renames one).
import type { components } from './schema.gen';

type S = components['schemas'];
export type TaskSummary = S['TaskSummary'];
export type TaskPage = S['TaskPage'];
export type TaskDetail = S['TaskDetail'];
export type Attempt = S['AttemptOut'];
export type TaskEvent = TaskDetail['events'][number];
export type WorkflowSummary = S['WorkflowSummary'];
export type WorkflowPage = S['WorkflowPage'];
export type WorkflowDetail = S['WorkflowGraphOut'];
export type WorkflowNode = S['NodeOut'];
export type WorkflowAttemptSpan = S['AttemptSpanOut'];
export type WorkflowEdge = S['EdgeOut'];
export type WorkflowGroup = S['GroupOut'];
export type Worker = S['WorkerOut'];
export type WorkerList = S['WorkerList'];
export type TaskNameList = S['TaskNameList'];
export type FailureGroup = S['FailureGroup'];
export type FailureList = S['FailureList'];
export type TaskStats = S['TaskStats'];
export type TaskStatsList = S['TaskStatsList'];
export type BeatEntry = S['BeatEntryOut'];
export type BeatRun = S['BeatRunOut'];
export type MissedRun = S['MissedRunOut'];
export type BeatList = S['BeatList'];
export type BeatEntryPage = S['BeatEntryPage'];
