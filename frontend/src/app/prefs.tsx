// User preferences that are not view state (so they live in localStorage, not the URL): theme and time mode.
import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from 'react';
import type { TimeMode } from '../domain/time';

export type ThemePref = 'system' | 'light' | 'dark';

interface Prefs {
  theme: ThemePref;
  cycleTheme: () => void;
  timeMode: TimeMode;
  cycleTimeMode: () => void;
}

const PrefsContext = createContext<Prefs | null>(null);

function load<T extends string>(key: string, allowed: readonly T[], fallback: T): T {
  try {
    const v = localStorage.getItem(key);
    return v !== null && (allowed as readonly string[]).includes(v) ? (v as T) : fallback;
  } catch {
    return fallback;
  }
}
function save(key: string, value: string) {
  try {
    localStorage.setItem(key, value);
  } catch {
    // Private mode: the preference lasts for this page only.
  }
}

const THEMES = ['system', 'light', 'dark'] as const;
const TIME_MODES = ['local', 'utc', 'relative'] as const;

export function PrefsProvider({ children }: { children: ReactNode }) {
  const [theme, setTheme] = useState<ThemePref>(() => load('stemtrace.theme', THEMES, 'system'));
  const [timeMode, setTimeMode] = useState<TimeMode>(() => load('stemtrace.time', TIME_MODES, 'local'));

  useEffect(() => {
    const root = document.documentElement;
    if (theme === 'system') root.removeAttribute('data-theme');
    else root.setAttribute('data-theme', theme);
    save('stemtrace.theme', theme);
  }, [theme]);
  useEffect(() => save('stemtrace.time', timeMode), [timeMode]);

  const cycleTheme = useCallback(() => setTheme((t) => THEMES[(THEMES.indexOf(t) + 1) % THEMES.length] ?? 'system'), []);
  const cycleTimeMode = useCallback(
    () => setTimeMode((t) => TIME_MODES[(TIME_MODES.indexOf(t) + 1) % TIME_MODES.length] ?? 'local'),
    [],
  );
  const value = useMemo(() => ({ theme, cycleTheme, timeMode, cycleTimeMode }), [theme, cycleTheme, timeMode, cycleTimeMode]);
  return <PrefsContext.Provider value={value}>{children}</PrefsContext.Provider>;
}

export function usePrefs(): Prefs {
  const p = useContext(PrefsContext);
  if (!p) throw new Error('usePrefs outside PrefsProvider');
  return p;
}
