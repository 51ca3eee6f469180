import { Link } from 'react-router';
import { useTitle } from '../app/title';
import { Empty } from '../components/common';

export function NotFoundPage() {
  useTitle('Not found');
  return (
    <Empty title="No page here">
      <Link to="/tasks">Go to the task list</Link>
    </Empty>
  );
}
