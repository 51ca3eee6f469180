// The app frame: navigation, live/time/theme toggles, paste-a-task-id-anywhere and keyboard shortcuts.
import { Suspense, useEffect, useRef, useState } from 'react';
import { NavLink, Outlet, useNavigate } from 'react-router';
import { useLive } from '../app/live';
import { usePrefs } from '../app/prefs';
import { findTaskId } from '../domain/values';
import { Loading } from './common';

const NAV = [
  { to: '/', label: 'Attention', key: 'a' },
  { to: '/tasks', label: 'Tasks', key: 't' },
  { to: '/workflows', label: 'Workflows', key: 'w' },
  { to: '/failures', label: 'Failures', key: 'f' },
  { to: '/workers', label: 'Workers', key: 'k' },
  { to: '/beat', label: 'Beat', key: 'b' },
];

function isTyping(el: EventTarget | null): boolean {
  const t = el as HTMLElement | null;
  return !!t && (t.tagName === 'INPUT' || t.tagName === 'TEXTAREA' || t.tagName === 'SELECT' || t.isContentEditable);
}

export function Layout() {
  const navigate = useNavigate();
  const live = useLive();
  const { theme, cycleTheme, timeMode, cycleTimeMode } = usePrefs();
  const [jump, setJump] = useState('');
  const [help, setHelp] = useState(false);
  const gPressed = useRef(false);

  useEffect(() => {
    const onPaste = (e: ClipboardEvent) => {
      if (isTyping(e.target)) return;
      const id = findTaskId(e.clipboardData?.getData('text') ?? '');
      if (id) {
        e.preventDefault();
        navigate(`/tasks/${id}`);
      }
    };
    const onKey = (e: KeyboardEvent) => {
      if (e.ctrlKey || e.metaKey || e.altKey || isTyping(e.target)) return;
      if (e.key === '/') {
        const el = document.querySelector<HTMLInputElement>('[data-page-search]') ?? document.getElementById('global-search');
        if (el) {
          e.preventDefault();
          (el as HTMLInputElement).focus();
          (el as HTMLInputElement).select();
        }
      } else if (e.key === '?') setHelp((h) => !h);
      else if (e.key === 'Escape') setHelp(false);
      else if (gPressed.current) {
        gPressed.current = false;
        const item = NAV.find((n) => n.key === e.key);
        if (item) navigate(item.to);
      } else if (e.key === 'g') {
        gPressed.current = true;
        window.setTimeout(() => (gPressed.current = false), 1000);
      }
    };
    document.addEventListener('paste', onPaste);
    document.addEventListener('keydown', onKey);
    return () => {
      document.removeEventListener('paste', onPaste);
      document.removeEventListener('keydown', onKey);
    };
  }, [navigate]);

  const liveLabel = {
    live: 'Live', connecting: 'Connecting…', reconnecting: 'Reconnecting…', polling: 'Reconnecting…', paused: 'Paused', hidden: 'Paused (tab hidden)',
  }[live.status];

  return (
    <div className="app">
      <header className="topbar">
        <a className="brand" href="#main" onClick={(e) => { e.preventDefault(); navigate('/'); }}>
          <span className="brand-mark" aria-hidden="true">◆</span> stemtrace
        </a>
        <nav aria-label="Main">
          {NAV.map((n) => (
            <NavLink key={n.to} to={n.to} end={n.to === '/'} className={({ isActive }) => (isActive ? 'nav active' : 'nav')}>
              {n.label}
            </NavLink>
          ))}
        </nav>
        <form
          className="jump"
          role="search"
          onSubmit={(e) => {
            e.preventDefault();
            const text = jump.trim();
            if (!text) return;
            const id = findTaskId(text);
            navigate(id ? `/tasks/${id}` : `/tasks?q=${encodeURIComponent(text)}`);
            setJump('');
          }}
        >
          <input
            id="global-search"
            type="search"
            placeholder="Task id or search…  ( / )"
            aria-label="Go to a task id or search tasks"
            value={jump}
            onChange={(e) => setJump(e.target.value)}
          />
        </form>
        <div className="toggles">
          <button type="button" className={`btn live-${live.status}`} onClick={live.togglePaused} aria-pressed={!live.paused} title="Live updates (pause/resume)">
            <span className="dot" aria-hidden="true" /> {liveLabel}
          </button>
          <button type="button" className="btn" onClick={cycleTimeMode} title="Time display: local, UTC or relative">
            {timeMode === 'local' ? 'Local time' : timeMode === 'utc' ? 'UTC' : 'Relative'}
          </button>
          <button type="button" className="btn" onClick={cycleTheme} title="Theme: system, light or dark">
            {theme === 'system' ? 'Theme: auto' : theme === 'light' ? 'Theme: light' : 'Theme: dark'}
          </button>
        </div>
      </header>
      {live.droppedAt !== null && (
        <div className="stale-banner" role="status" data-stale>
          The live stream dropped at {new Date(live.droppedAt).toLocaleTimeString()}: reconnecting. What you see may be stale;
          it refreshes every few seconds meanwhile and goes back to Live by itself.
        </div>
      )}
      <main id="main">
        {/* Pages loaded on first visit (React.lazy) show this until their code arrives. */}
        <Suspense fallback={<Loading what="page" />}>
          <Outlet />
        </Suspense>
      </main>
      {help && (
        <div className="help" role="dialog" aria-label="Keyboard shortcuts">
          <h2>Keyboard</h2>
          <dl>
            <dt>/</dt><dd>Focus search</dd>
            <dt>g a · g t · g w · g f · g k · g b</dt><dd>Attention · Tasks · Workflows · Failures · Workers · Beat</dd>
            <dt>j / k, ↑ / ↓, Enter</dt><dd>Move in a list, open the row</dd>
            <dt>Paste a task id</dt><dd>Open that task</dd>
            <dt>?</dt><dd>This help</dd>
          </dl>
          <button type="button" className="btn" onClick={() => setHelp(false)}>Close</button>
        </div>
      )}
    </div>
  );
}
