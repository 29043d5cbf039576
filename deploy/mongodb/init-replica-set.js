/* global rs */ // run by mongosh, which defines rs
// Run once, on node 1, with mongosh, after the three mongod are up with mongodb/mongod.conf:
//   mongosh --host 10.0.0.11 deploy/mongodb/init-replica-set.js
// then create the users (an admin, and Avviso's with readWrite on its database):
//   mongosh "mongodb://10.0.0.11/admin?replicaSet=rs0" --eval 'db.createUser({user: "avviso", pwd: passwordPrompt(), roles: [{role: "readWrite", db: "avviso"}]})'
rs.initiate({
  _id: 'rs0',
  members: [
    { _id: 0, host: '10.0.0.11:27017' },
    { _id: 1, host: '10.0.0.12:27017' },
    { _id: 2, host: '10.0.0.13:27017' },
  ],
  // A write acknowledged by a majority is kept through an election.
  writeConcernMajorityJournalDefault: true,
});
