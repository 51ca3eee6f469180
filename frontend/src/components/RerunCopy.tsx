// "Copy as code" / "Copy as CLI" on the task page: stemtrace never re-sends a task itself (it is
// read-only towards Celery); it hands the user the exact call, flagged when it is not faithful.
import type { TaskDetail } from '../api/types';
import { asCli, asCode } from '../domain/rerun';
import { CopyButton } from './common';

export function RerunCopy({ task }: { task: TaskDetail }) {
  const code = asCode(task);
  const cli = asCli(task);
  return (
    <span className="rerun">
      <CopyButton text={code.text} label="Copy as code" />{' '}
      <CopyButton text={cli.text} label="Copy as CLI" />
      {code.unsafe && (
        <span className="rerun-unsafe" role="note">
          {' '}⚠ {code.unsafe}
        </span>
      )}
    </span>
  );
}
