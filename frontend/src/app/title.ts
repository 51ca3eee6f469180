// A title per page ("FAILURE ship_parcel 9d5f2c · stemtrace"), so tabs and history tell pages apart.
import { useEffect } from 'react';

export function useTitle(title: string | null | undefined): void {
  useEffect(() => {
    document.title = title ? `${title} · stemtrace` : 'stemtrace';
  }, [title]);
}
