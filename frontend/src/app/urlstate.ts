// View state lives in the URL so every view is a shareable link.
import { useCallback, useEffect, useRef, useState } from 'react';
import { useSearchParams } from 'react-router';

export function useUrlState() {
  const [params, setParams] = useSearchParams();
  const set = useCallback(
    (updates: Record<string, string | string[] | null>) => {
      setParams(
        (prev) => {
          const next = new URLSearchParams(prev);
          for (const [k, v] of Object.entries(updates)) {
            next.delete(k);
            if (Array.isArray(v)) for (const item of v) next.append(k, item);
            else if (v !== null && v !== '') next.set(k, v);
          }
          return next;
        },
        { replace: true },
      );
    },
    [setParams],
  );
  return [params, set] as const;
}

/** A text input bound to a URL parameter, committed after the user pauses typing. */
export function useDebouncedParam(value: string, commit: (v: string) => void, ms = 300) {
  const [draft, setDraft] = useState(value);
  const last = useRef(value);
  useEffect(() => {
    // The URL changed from elsewhere (back button, a link): follow it.
    if (value !== last.current) {
      last.current = value;
      setDraft(value);
    }
  }, [value]);
  useEffect(() => {
    if (draft === last.current) return;
    const t = window.setTimeout(() => {
      last.current = draft;
      commit(draft);
    }, ms);
    return () => window.clearTimeout(t);
  }, [draft, commit, ms]);
  return [draft, setDraft] as const;
}
