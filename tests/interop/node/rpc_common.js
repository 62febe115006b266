// Shared by rpc_server.js and rpc_client.js: the test IDL written by hand, as tars2node would
// generate it (there is no tars2node on npm). The IDL is the one in
// tests/interop/test_rpc_node.py:
//
//   module InteropRpc {
//     struct Point { 0 require int x; 1 require int y; 2 optional string label; };
//     interface Echo {
//       int echo(string s, out string r);
//       int divide(int a, int b, out int quotient, out int remainder);
//       Point mirror(Point p, out string desc);
//       int sleep(int ms);
//       void note(string text);
//       string lastNote();
//       int fail(int how);
//     };
//   };
//
// Plain Tars (iVersion 1) puts parameter n at tag n and the return value at tag 0; TUP
// (iVersion 3, or 2) keys them by name, the return value by "". `Args` and `Results` hide the
// difference so each method is written once.
'use strict';

const TarsStream = require('@tars/stream');

function Point() {
  this.x = 0;
  this.y = 0;
  this.label = '';
}
Point._classname = 'InteropRpc.Point';
Point._readFrom = function (is) {
  const p = new Point();
  p.x = is.readInt32(0, true, 0);
  p.y = is.readInt32(1, true, 0);
  p.label = is.readString(2, false, '');
  return p;
};
Point.create = Point._readFrom;
Point.prototype._writeTo = function (os) {
  os.writeInt32(0, this.x);
  os.writeInt32(1, this.y);
  os.writeString(2, this.label);
};
Point.prototype.toObject = function () {
  return { x: this.x, y: this.y, label: this.label };
};
Point.from = function (obj) {
  const p = new Point();
  p.x = obj.x;
  p.y = obj.y;
  p.label = obj.label || '';
  return p;
};

function isTup(version) {
  return version === 2 || version === 3;
}

// Reads parameters from a request sBuffer (server) or results from a response (client).
function Args(version, binBuffer) {
  this.tup = isTup(version);
  if (this.tup) {
    this.attr = new TarsStream.UniAttribute();
    this.attr.tupVersion = version;
    this.attr.decode(binBuffer);
  } else {
    this.is = new TarsStream.TarsInputStream(binBuffer);
  }
}
Args.fromTup = function (attr) {
  const a = Object.create(Args.prototype);
  a.tup = true;
  a.attr = attr;
  return a;
};
Args.prototype.int32 = function (tag, name) {
  return this.tup ? this.attr.readInt32(name) : this.is.readInt32(tag, true, 0);
};
Args.prototype.string = function (tag, name) {
  return this.tup ? this.attr.readString(name) : this.is.readString(tag, true, '');
};
Args.prototype.point = function (tag, name) {
  return this.tup ? this.attr.readStruct(name, Point) : this.is.readStruct(tag, true, Point);
};

// Writes parameters (client) or results (server).
function Results(version) {
  this.tup = isTup(version);
  if (this.tup) {
    this.attr = new TarsStream.UniAttribute();
    this.attr.tupVersion = version;
  } else {
    this.os = new TarsStream.TarsOutputStream();
  }
}
Results.prototype.int32 = function (tag, name, v) {
  if (this.tup) this.attr.writeInt32(name, v);
  else this.os.writeInt32(tag, v);
  return this;
};
Results.prototype.string = function (tag, name, v) {
  if (this.tup) this.attr.writeString(name, v);
  else this.os.writeString(tag, v);
  return this;
};
Results.prototype.point = function (tag, name, v) {
  if (this.tup) this.attr.writeStruct(name, v);
  else this.os.writeStruct(tag, v);
  return this;
};
Results.prototype.buffer = function () {
  return this.tup ? this.attr.encode() : this.os.getBinBuffer();
};

module.exports = { Point, Args, Results, isTup };
