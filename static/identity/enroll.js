// Employee page: take photos with the webcam and add them, as JPEG files, to the "Add photos"
// input, so that they are sent with the form like photos chosen from disk.
'use strict';

const config = JSON.parse(document.getElementById('enroll-config').textContent);
const photoInput = document.getElementById(config.inputId);
const video = document.getElementById('webcam-video');
const canvas = document.getElementById('webcam-canvas');
const startButton = document.getElementById('webcam-start');
const captureButton = document.getElementById('webcam-capture');
const stopButton = document.getElementById('webcam-stop');
const message = document.getElementById('webcam-message');
const previews = document.getElementById('photo-previews');

const constraints = {
  audio: false,
  video: { width: { ideal: 1280 }, height: { ideal: 720 }, facingMode: 'user' },
};

let stream = null;
let capturedCount = 0;

function showMessage(text) {
  message.textContent = text;
  message.hidden = !text;
}

function handleSuccess(mediaStream) {
  stream = mediaStream;
  video.srcObject = mediaStream;
  video.hidden = false;
  captureButton.disabled = false;
  stopButton.disabled = false;
  startButton.disabled = true;
  showMessage('');
}

function handleError(error) {
  if (error.name === 'NotAllowedError' || error.name === 'SecurityError') {
    showMessage('Camera permission was refused. Allow this site to use the camera in the browser ' +
      '(the camera icon in the address bar), then press "Start camera" again; or choose photo files instead.');
  } else if (error.name === 'NotFoundError' || error.name === 'OverconstrainedError') {
    showMessage('No camera was found on this computer. Connect one, or choose photo files instead.');
  } else if (error.name === 'NotReadableError') {
    showMessage('The camera is in use by another program. Close it and press "Start camera" again.');
  } else {
    showMessage('The camera could not be started (' + error.name + '). Choose photo files instead.');
  }
}

function stopCamera() {
  if (stream) {
    stream.getTracks().forEach((track) => track.stop());
  }
  stream = null;
  video.srcObject = null;
  video.hidden = true;
  captureButton.disabled = true;
  stopButton.disabled = true;
  startButton.disabled = false;
}

function addFile(file) {
  // A file input's list cannot be edited in place: build a new one with the old files and this one.
  const transfer = new DataTransfer();
  Array.from(photoInput.files).forEach((existing) => transfer.items.add(existing));
  transfer.items.add(file);
  photoInput.files = transfer.files;
  showPreviews();
}

function showPreviews() {
  previews.replaceChildren();
  Array.from(photoInput.files).forEach((file) => {
    const figure = document.createElement('figure');
    const image = document.createElement('img');
    const caption = document.createElement('figcaption');
    image.src = URL.createObjectURL(file);
    image.alt = file.name;
    image.addEventListener('load', () => URL.revokeObjectURL(image.src));
    caption.textContent = file.name;
    figure.append(image, caption);
    previews.append(figure);
  });
}

function capture() {
  canvas.width = video.videoWidth;
  canvas.height = video.videoHeight;
  canvas.getContext('2d').drawImage(video, 0, 0, canvas.width, canvas.height);
  canvas.toBlob((blob) => {
    if (!blob) {
      showMessage('The photo could not be taken. Try again.');
      return;
    }
    capturedCount += 1;
    const name = 'camera-' + new Date().toISOString().replace(/[:.]/g, '-') + '-' + capturedCount + '.jpg';
    addFile(new File([blob], name, { type: 'image/jpeg' }));
  }, 'image/jpeg', config.jpegQuality);
}

if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
  // Browsers only offer the camera on secure pages: HTTPS, or this computer's own address.
  startButton.disabled = true;
  showMessage('No camera is available here: this browser does not offer one to this page ' +
    '(the camera needs HTTPS or localhost). Choose photo files instead.');
} else {
  startButton.addEventListener('click', () => {
    navigator.mediaDevices.getUserMedia(constraints).then(handleSuccess).catch(handleError);
  });
}
captureButton.addEventListener('click', capture);
stopButton.addEventListener('click', stopCamera);
photoInput.addEventListener('change', showPreviews);
window.addEventListener('pagehide', stopCamera);
