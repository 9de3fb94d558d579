import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './App.tsx';
// One sheet per panel or shared piece. Where two rules of equal specificity meet on an element the
// later sheet wins, so the order below is part of the styling: tokens and base rules first.
import './styles/base.css';
import './styles/app.css';
import './styles/forms.css';
import './styles/gpu.css';
import './styles/model.css';
import './styles/playground.css';
import './styles/charts.css';
import './styles/training.css';
import './styles/data.css';
import './styles/message-lines.css';
import './styles/job-progress.css';
import './styles/library.css';
import './styles/heat-tables.css';
import './styles/adapter-inspector.css';
import './styles/compose.css';
import './styles/live-preview.css';
import './styles/merge-card.css';
import './styles/layer-grid.css';
import './styles/merge-report.css';
import './styles/extract.css';
import './styles/routing.css';

const root = document.getElementById('root');
if (!root) throw new Error('index.html has no #root element');
createRoot(root).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
