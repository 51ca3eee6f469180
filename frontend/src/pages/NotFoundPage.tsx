import { Link } from 'react-router';
import { Empty } from '../components/common';

export function NotFoundPage() {
  return (
    <Empty title="No page here">
      <Link to="/tasks">Go to the task list</Link>
    </Empty>
  );
}
