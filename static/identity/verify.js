// Kiosk page (1:N, the kiosk's token) and personal check-in (1:1, the session): a live camera
// preview; on "Check in / Check out" the page asks for a liveness challenge, shows its instruction
// big while it takes a sequence of frames (or, where no challenge is needed, a short burst), sends
// them to /api/v1/verify/ with the challenge's nonce, and shows the answer big. The server alone
// judges whether the head moved as asked. Configuration comes from the page (json_script
// "verify-config").
'use strict';

const config = JSON.parse(document.getElementById('verify-config').textContent);
const isKiosk = config.mode === 'kiosk';
const video = document.getElementById('camera-video');
const canvas = document.getElementById('capture-canvas');
const cameraMessage = document.getElementById('camera-message');
const startButton = document.getElementById('start-button');
const answer = document.getElementById('answer');
const answerTitle = document.getElementById('answer-title');
const answerDetail = document.getElementById('answer-detail');
const answerNote = document.getElementById('answer-note');
const switchButton = document.getElementById('switch-button');
const challengeBox = document.getElementById('challenge');
const challengeStep = document.getElementById('challenge-step');
const challengeAll = document.getElementById('challenge-all');
const setupSection = document.getElementById('kiosk-setup');
const setupForm = document.getElementById('kiosk-setup-form');
const setupError = document.getElementById('kiosk-setup-error');
const readySection = document.getElementById('kiosk-ready');
const forgetButton = document.getElementById('kiosk-forget');

const TOKEN_KEY = 'frid.kioskToken';
const TOKEN_PREFIX = 'kiosk_';
// A burst of 3 frames over half a second: the server checks they show one and the same person.
const FRAME_COUNT = 3;
const FRAME_INTERVAL_MS = 250;
const FRAME_WIDTH = 640;
const FRAME_HEIGHT = 480;
const JPEG_QUALITY = 0.9;
// Time to read the instruction before the first frame is taken.
const CHALLENGE_LEAD_MS = 1000;
const IDLE_TEXT = answerTitle.textContent;

const constraints = {
  audio: false,
  video: { width: { ideal: FRAME_WIDTH }, height: { ideal: FRAME_HEIGHT }, facingMode: 'user' },
};

let clearTimer = null;
let lastEvent = null; // {id, direction, time, name} of the last check-in, for the switch button

// --- The kiosk's token ----------------------------------------------------------------------

function kioskToken() {
  return window.localStorage.getItem(TOKEN_KEY) || '';
}

function showSetup() {
  setupSection.hidden = false;
  readySection.hidden = true;
  document.getElementById('kiosk-token').focus();
}

function handleSetup(event) {
  event.preventDefault();
  const token = document.getElementById('kiosk-token').value.trim();
  if (!token.startsWith(TOKEN_PREFIX)) {
    setupError.textContent = 'A kiosk token starts with "' + TOKEN_PREFIX + '". Paste the whole token ' +
      'that was shown when the kiosk was registered.';
    setupError.hidden = false;
    return;
  }
  window.localStorage.setItem(TOKEN_KEY, token);
  setupError.hidden = true;
  setupForm.reset();
  showReady();
}

function forgetToken() {
  window.localStorage.removeItem(TOKEN_KEY);
  stopCamera();
  showSetup();
}

function showReady() {
  if (setupSection) {
    setupSection.hidden = true;
    readySection.hidden = false;
  }
  startCamera();
}

// --- The camera -----------------------------------------------------------------------------

function startCamera() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    showCameraMessage('The camera can only be used on a secure page. Open FRID through https ' +
      '(or on this computer through localhost).');
    return;
  }
  navigator.mediaDevices.getUserMedia(constraints).then(handleSuccess).catch(handleError);
}

function stopCamera() {
  if (video.srcObject) {
    video.srcObject.getTracks().forEach((track) => track.stop());
  }
  video.srcObject = null;
  startButton.disabled = true;
}

function handleSuccess(stream) {
  video.srcObject = stream;
  showCameraMessage('');
  // Frames can be taken once the picture has a size.
  video.addEventListener('loadedmetadata', () => { startButton.disabled = false; }, { once: true });
}

function handleError(error) {
  if (error.name === 'NotAllowedError' || error.name === 'SecurityError') {
    showCameraMessage('Camera permission was refused. Allow this site to use the camera (the camera ' +
      'icon in the address bar), then reload the page.');
  } else if (error.name === 'NotFoundError' || error.name === 'OverconstrainedError') {
    showCameraMessage('No camera was found. Connect a camera, then reload the page.');
  } else if (error.name === 'NotReadableError') {
    showCameraMessage('The camera is in use by another program. Close it, then reload the page.');
  } else {
    showCameraMessage('The camera could not be started (' + error.name + '). Reload the page to try again.');
  }
}

function showCameraMessage(text) {
  cameraMessage.textContent = text;
  cameraMessage.hidden = !text;
}

// The middle of the picture at 4:3, as the server expects a 640x480 frame.
function captureFrame() {
  const width = video.videoWidth;
  const height = video.videoHeight;
  const scale = Math.min(width / FRAME_WIDTH, height / FRAME_HEIGHT);
  const sourceWidth = FRAME_WIDTH * scale;
  const sourceHeight = FRAME_HEIGHT * scale;
  const context = canvas.getContext('2d');
  context.drawImage(video, (width - sourceWidth) / 2, (height - sourceHeight) / 2, sourceWidth, sourceHeight,
    0, 0, FRAME_WIDTH, FRAME_HEIGHT);
  return new Promise((resolve) => canvas.toBlob(resolve, 'image/jpeg', JPEG_QUALITY));
}

function wait(milliseconds) {
  return new Promise((resolve) => setTimeout(resolve, milliseconds));
}

async function captureBurst() {
  const frames = [];
  for (let index = 0; index < FRAME_COUNT; index++) {
    if (index > 0) {
      await wait(FRAME_INTERVAL_MS);
    }
    frames.push(await captureFrame());
  }
  return frames;
}

// --- The liveness challenge -------------------------------------------------------------------

function showChallenge(all, step) {
  challengeAll.textContent = all;
  challengeStep.textContent = step;
  challengeBox.hidden = false;
}

function hideChallenge() {
  challengeBox.hidden = true;
}

// The frames of a challenge, each step shown in turn while they are taken; the server reads the
// movement from the frames themselves, in order, whatever the timing.
async function followChallenge(plan) {
  const steps = plan.step_instructions;
  showChallenge(plan.instructions, steps[0]);
  showAnswer('working', plan.instructions, 'Follow the instruction on the camera while the pictures are taken.', '');
  await wait(CHALLENGE_LEAD_MS);
  const frames = [];
  for (let index = 0; index < plan.frames; index++) {
    if (index > 0) {
      await wait(plan.frame_interval_ms);
    }
    showChallenge(plan.instructions, steps[Math.min(steps.length - 1, Math.floor(index * steps.length / plan.frames))]);
    frames.push(await captureFrame());
  }
  hideChallenge();
  return frames;
}

// --- Talking to FRID ------------------------------------------------------------------------

function csrfToken() {
  const cookie = document.cookie.split('; ').find((part) => part.startsWith('csrftoken='));
  return cookie ? decodeURIComponent(cookie.split('=')[1]) : '';
}

function requestHeaders() {
  return isKiosk ? { Authorization: 'Token ' + kioskToken() } : { 'X-CSRFToken': csrfToken() };
}

function chosenDirection() {
  const chosen = document.querySelector('input[name="direction"]:checked');
  return chosen ? chosen.value : '';
}

async function post(url, body) {
  const response = await fetch(url, {
    method: 'POST', body: body, headers: requestHeaders(), credentials: 'same-origin',
  });
  let data = null;
  try {
    data = await response.json();
  } catch (error) {
    data = null; // not JSON: a proxy's error page, or a server error
  }
  return { status: response.status, data: data };
}

async function handleStart() {
  startButton.disabled = true;
  showAnswer('working', 'Get ready…', 'One moment.', '');
  try {
    const challenge = await post(config.challengeUrl, null);
    if (challenge.status !== 200 && challenge.status !== 201) {
      showReply(challenge.status, challenge.data);
      return;
    }
    const plan = challenge.data && challenge.data.required ? challenge.data : null;
    if (!plan) {
      showAnswer('working', 'Hold still…', 'Looking at the camera.', '');
    }
    const frames = plan ? await followChallenge(plan) : await captureBurst();
    const body = new FormData();
    frames.forEach((frame, index) => body.append('image', frame, 'frame-' + (index + 1) + '.jpg'));
    if (plan) {
      body.append('challenge', plan.challenge);
    }
    if (!isKiosk) {
      body.append('employee_number', config.employeeNumber);
      const direction = chosenDirection();
      if (direction) {
        body.append('direction', direction);
      }
    }
    showAnswer('working', 'Checking…', 'One moment.', '');
    const reply = await post(config.verifyUrl, body);
    showReply(reply.status, reply.data);
  } catch (error) {
    showAnswer('busy', 'FRID could not be reached', 'Check the network connection, then try again.', '');
  } finally {
    hideChallenge();
    startButton.disabled = !video.srcObject;
  }
}

function showReply(status, data) {
  if (status === 503) {
    showAnswer('busy', 'Busy: try again', (data && data.detail) || 'Verification is busy. Try again in a moment.', '');
  } else if (status === 200 && data && data.decision === 'verified') {
    showVerified(data);
  } else if (status === 200 && data && data.decision === 'not_recognised') {
    // The reason may open with the title's own words; say them once.
    const reason = (data.reason || '').replace(/^Not recognised\.\s*/, '');
    showAnswer('not_recognised', isKiosk ? 'Not recognised' : 'Not recognised as you', reason, '');
  } else if (status === 200 && data && data.decision === 'rejected') {
    showAnswer('rejected', 'Please try again', data.reason, '');
  } else if (status === 401 && isKiosk) {
    showAnswer('refused', 'This kiosk is not registered',
      (data && data.detail) || 'Its token is not known to FRID.',
      'An administrator must enter a new token: "Change this kiosk\'s token" below.');
  } else if (status === 401) {
    showAnswer('refused', 'You are logged out', 'Log in again, then check in.', '');
  } else if (status === 403 && isKiosk) {
    showAnswer('refused', 'This kiosk is switched off', (data && data.detail) || '', '');
  } else if (data && data.detail) {
    showAnswer('refused', 'Cannot check in', data.detail, '');
  } else {
    showAnswer('busy', 'Something went wrong', 'FRID answered with an error (' + status + '). Try again, ' +
      'and tell an administrator if it keeps happening.', '');
  }
}

function showVerified(data) {
  lastEvent = { id: data.event_id, direction: data.direction, time: data.event_time, name: data.employee.name };
  showAnswer('verified', data.employee.name, directionText(data.direction, data.event_time), data.reason || '');
  if (data.event_id && data.direction) {
    switchButton.textContent = 'Wrong? Switch to check-' + (data.direction === 'in' ? 'out' : 'in');
    switchButton.hidden = false;
  }
}

async function handleSwitch() {
  if (!lastEvent) {
    return;
  }
  switchButton.disabled = true;
  try {
    const reply = await post(config.switchUrl.replace('{event_id}', lastEvent.id), null);
    if (reply.status === 200 && reply.data) {
      showVerified({
        event_id: reply.data.event_id, direction: reply.data.direction, event_time: lastEvent.time,
        employee: { name: lastEvent.name }, reason: 'Changed to a check-' + reply.data.direction + '.',
      });
    } else {
      showAnswer('refused', 'Could not switch', (reply.data && reply.data.detail) ||
        'FRID answered with an error (' + reply.status + '). Ask HR to correct it.', '');
    }
  } catch (error) {
    showAnswer('busy', 'FRID could not be reached', 'Check the network connection, then try again.', '');
  } finally {
    switchButton.disabled = false;
  }
}

function directionText(direction, isoTime) {
  const verb = direction === 'out' ? 'checked out' : 'checked in';
  return isoTime ? verb + ' ' + localTime(isoTime) : verb;
}

function localTime(isoTime) {
  const options = { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' };
  if (config.timeZone) {
    options.timeZone = config.timeZone;
  }
  return new Date(isoTime).toLocaleTimeString('en-GB', options);
}

// --- The answer -----------------------------------------------------------------------------

function showAnswer(state, title, detail, note) {
  window.clearTimeout(clearTimer);
  answer.dataset.state = state;
  answerTitle.textContent = title;
  answerDetail.textContent = detail || '';
  answerNote.textContent = note || '';
  switchButton.hidden = true;
  const settled = state !== 'working' && state !== 'idle';
  if (settled && config.clearAfterSeconds > 0) {
    // Clear the answer for the next person in the queue.
    clearTimer = window.setTimeout(clearAnswer, config.clearAfterSeconds * 1000);
  }
}

function clearAnswer() {
  lastEvent = null;
  showAnswer('idle', IDLE_TEXT, '', '');
}

// --- Start ----------------------------------------------------------------------------------

startButton.addEventListener('click', handleStart);
switchButton.addEventListener('click', handleSwitch);
if (isKiosk) {
  setupForm.addEventListener('submit', handleSetup);
  forgetButton.addEventListener('click', forgetToken);
  if (kioskToken()) {
    showReady();
  } else {
    showSetup();
  }
} else {
  showReady();
}
